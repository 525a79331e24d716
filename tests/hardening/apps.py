"""Every HTTP service's app, built against one test's settings, for the attacks and the fuzzer."""

from collections.abc import Callable

import httpx
from fastapi import FastAPI
from ticketing.common.settings import CommonSettings
from ticketing.event.app import create_app as create_event_app
from ticketing.payment.app import create_app as create_payment_app
from ticketing.queue.app import create_app as create_queue_app
from ticketing.queue.settings import QueueSettings
from ticketing.reservation.app import create_app as create_reservation_app
from ticketing.seat.app import create_app as create_seat_app
from ticketing.seat.settings import SeatSettings
from ticketing.user.app import create_app as create_user_app
from ticketing.user.settings import UserSettings

from tests.core.sale_kit import payment_settings, reservation_settings

ADMIN_EMAIL = "admin@example.org"
KNOWN_EVENT = "known-event"
KNOWN_VENUE = "known-venue"


def _event_service(request: httpx.Request) -> httpx.Response:
    """The event service as the seat service sees it: one known event, every other one absent."""
    if request.url.path == f"/events/{KNOWN_EVENT}":
        return httpx.Response(200, json={"id": KNOWN_EVENT, "venue_id": KNOWN_VENUE})
    return httpx.Response(404, json={"detail": "event not found"})


APPS: dict[str, Callable[[CommonSettings], FastAPI]] = {
    "user": lambda s: create_user_app(
        UserSettings.model_validate({**s.model_dump(), "admin_emails": [ADMIN_EMAIL]})
    ),
    "event": create_event_app,
    "seat": lambda s: create_seat_app(
        SeatSettings.model_validate(s.model_dump()),
        event_transport=httpx.MockTransport(_event_service),
    ),
    # Rate limits high enough that the fuzzer's one user reaches the hold code, not the 429.
    "reservation": lambda s: create_reservation_app(
        reservation_settings(s, hold_rate_limit=1_000_000)
    ),
    "payment": lambda s: create_payment_app(payment_settings(s)),
    "queue": lambda s: create_queue_app(
        QueueSettings.model_validate(
            {
                **s.model_dump(),
                "queue_join_rate_limit": 1_000_000,
                "queue_socket_rate_limit": 1_000_000,
            }
        )
    ),
}
