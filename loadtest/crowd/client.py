"""The platform's HTTP and WebSocket API as the crowd sees it: requests to make, answers to read.

Free of I/O so the asyncio crowd (httpx, websockets) and Locust (gevent) share it: an API
change touches this file alone (and loadtest/k6/lib/api.js, its k6 twin).
"""

import json
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any
from urllib.parse import quote

from ticketing.reservation.routes import MAX_WAIT_SECONDS


@dataclass(frozen=True)
class Call:
    """One HTTP request; `step` names it in latency figures (join, hold, confirm, ...)."""

    step: str
    method: str
    url: str
    json: dict[str, Any] | None = None
    headers: dict[str, str] = field(default_factory=dict)


class QueueState(StrEnum):
    WAITING = "waiting"
    ADMITTED = "admitted"
    SOLD_OUT = "sold_out"
    CLOSED = "closed"


@dataclass(frozen=True)
class Place:
    """Where a person stands in the waiting room, and the line's size as the server counts it."""

    state: QueueState
    position: int | None = None
    admission_token: str | None = None
    waiting: int | None = None
    active: int | None = None


@dataclass(frozen=True)
class ServiceUrls:
    user: str
    queue: str
    event: str
    seat: str
    reservation: str


def _bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def _ws(http_url: str) -> str:
    return "ws" + http_url.removeprefix("http")


@dataclass(frozen=True)
class SaleApi:
    urls: ServiceUrls
    event_id: str

    def sign_up(self, email: str, password: str) -> Call:
        body = {"email": email, "password": password}
        return Call("sign_up", "POST", f"{self.urls.user}/users", body)

    def login(self, email: str, password: str) -> Call:
        body = {"email": email, "password": password}
        return Call("login", "POST", f"{self.urls.user}/auth/login", body)

    @property
    def _line(self) -> str:
        return f"{self.urls.queue}/sales/{self.event_id}/queue"

    def join(self, token: str) -> Call:
        return Call("join", "POST", self._line, None, _bearer(token))

    def place(self, token: str) -> Call:
        return Call("poll", "GET", self._line, None, _bearer(token))

    def leave(self, token: str) -> Call:
        return Call("leave", "DELETE", self._line, None, _bearer(token))

    def waiting_socket(self, token: str) -> str:
        """Join and watch; browsers cannot set headers on a WebSocket, so the token is a query."""
        return f"{_ws(self._line)}/ws?access_token={quote(token)}"

    def free_seats(self, token: str, etag: str | None = None) -> Call:
        """The free seats' ids; with the ETag of the list the caller has, a 304 while it is
        current."""
        url = f"{self.urls.seat}/events/{self.event_id}/seats/free"
        headers = {**_bearer(token), **({"If-None-Match": etag} if etag else {})}
        return Call("seats", "GET", url, None, headers)

    def hold(self, token: str, admission_token: str, seat_ids: list[str]) -> Call:
        """Hold seats; payment then runs by itself over Kafka, so no pay call exists."""
        headers = {**_bearer(token), "X-Admission-Token": admission_token}
        url = f"{self.urls.reservation}/events/{self.event_id}/reservations"
        return Call("hold", "POST", url, {"seat_ids": seat_ids}, headers)

    def reservation(self, token: str, reservation_id: str) -> Call:
        """Answered once payment settles the reservation, or after the longest wait (10 s),
        as the web page reads it."""
        url = f"{self.urls.reservation}/reservations/{reservation_id}"
        url += f"?wait_seconds={MAX_WAIT_SECONDS:g}"
        return Call("confirm", "GET", url, None, _bearer(token))

    def put_venue(self, admin_token: str, venue_id: str, rows: int, seats_per_row: int) -> Call:
        body = {
            "name": f"Load-test venue {venue_id}",
            "sections": [
                {
                    "name": "floor",
                    "rows": rows,
                    "seats_per_row": seats_per_row,
                    "price_tier": "standard",
                }
            ],
            "price_tiers": [{"name": "standard", "price_cents": 5000}],
        }
        return Call(
            "setup", "PUT", f"{self.urls.seat}/venues/{venue_id}", body, _bearer(admin_token)
        )

    def put_event(self, admin_token: str, venue_id: str, opens_at: str, closes_at: str) -> Call:
        body = {
            "title": f"Load test {self.event_id}",
            "venue_id": venue_id,
            "opens_at": opens_at,
            "closes_at": closes_at,
        }
        return Call(
            "setup", "PUT", f"{self.urls.event}/events/{self.event_id}", body, _bearer(admin_token)
        )

    def load_inventory(self, admin_token: str) -> Call:
        url = f"{self.urls.seat}/events/{self.event_id}/inventory"
        return Call("setup", "POST", url, None, _bearer(admin_token))


def access_token(body: dict[str, Any]) -> str:
    return str(body["access_token"])


def place_from(body: dict[str, Any]) -> Place:
    """A queue status, from HTTP or a WebSocket message: {"type": "position" | "admitted" | ...}.

    The crowd leaves once the sale is sold out, rather than stay on the waiting list.
    """
    kind = body.get("type")
    if kind == "admitted":
        state = QueueState.ADMITTED
    elif kind == "sold_out" or body.get("sold_out"):
        state = QueueState.SOLD_OUT
    elif kind in ("position", "prequeue"):
        state = QueueState.WAITING
    else:
        state = QueueState.CLOSED
    position, waiting, active = body.get("position"), body.get("waiting"), body.get("active")
    return Place(
        state,
        int(position) if position is not None else None,
        str(body["token"]) if kind == "admitted" else None,
        int(waiting) if waiting is not None else None,
        int(active) if active is not None else None,
    )


def place_from_message(text: str | bytes) -> Place:
    return place_from(json.loads(text))


def free_seat_ids(body: dict[str, Any]) -> list[str]:
    """The free seats' ids from the seat service's {"free": [id, ...]}."""
    return [str(seat) for seat in body["free"]]


def reservation_id(body: dict[str, Any]) -> str:
    return str(body["id"])


def reservation_status(body: dict[str, Any]) -> str:
    return str(body["status"])


TERMINAL_STATUSES = frozenset({"CONFIRMED", "FAILED", "EXPIRED", "CANCELLED"})
