"""Makes sure a sale exists in the seat and event services, idempotently.

Three calls, each safe to repeat: PUT the venue (seat service), PUT the event (event service),
then POST the inventory load (seat service, which adds only seats it does not have yet).
"""

from dataclasses import dataclass

import httpx
from ticketing.common.errors import PermanentError, TemporaryError

from ticketing_operator.settings import OperatorSettings
from ticketing_operator.spec import TicketEventSpec

PRICE_TIER = "standard"


class ServicesUnavailable(TemporaryError):
    """A service did not answer, or answered 5xx/429: the same calls can succeed later."""


class ServicesRefused(PermanentError):
    """A service refused the sale (4xx): the spec must change before trying again."""


@dataclass(frozen=True)
class SaleServices:
    """The two services' clients, with their base URLs set."""

    events: httpx.AsyncClient
    seats: httpx.AsyncClient


def venue_id(event_id: str) -> str:
    return f"{event_id}-venue"


async def ensure_sale(
    services: SaleServices, settings: OperatorSettings, event_id: str, spec: TicketEventSpec
) -> None:
    # The operator's own service token, not a login token: it cannot act as a user or an admin.
    headers = {"Authorization": f"Bearer {settings.service_token}"}
    venue = spec.venue
    await _call(
        services.seats,
        "PUT",
        f"/venues/{venue_id(event_id)}",
        headers,
        {
            "name": spec.title or event_id,
            "sections": [
                {
                    "name": "main",
                    "rows": venue.rows,
                    "seats_per_row": venue.seats_per_row,
                    "price_tier": PRICE_TIER,
                }
            ],
            "price_tiers": [
                {"name": PRICE_TIER, "price_cents": venue.price_cents, "currency": venue.currency}
            ],
        },
    )
    await _call(
        services.events,
        "PUT",
        f"/events/{event_id}",
        headers,
        {
            "title": spec.title or event_id,
            "venue_id": venue_id(event_id),
            "opens_at": spec.sale.opens_at.isoformat(),
            "closes_at": spec.sale.closes_at.isoformat(),
        },
    )
    await _call(services.seats, "POST", f"/events/{event_id}/inventory", headers, None)


async def _call(
    client: httpx.AsyncClient,
    method: str,
    path: str,
    headers: dict[str, str],
    body: object,
) -> None:
    try:
        response = await client.request(method, path, headers=headers, json=body)
    except httpx.HTTPError as exc:
        raise ServicesUnavailable(f"{method} {client.base_url}{path} failed: {exc!r}") from exc
    if response.is_success:
        return
    detail = _detail(response)
    message = f"{method} {path} answered {response.status_code}: {detail}"
    if response.status_code >= 500 or response.status_code == httpx.codes.TOO_MANY_REQUESTS:
        raise ServicesUnavailable(message)
    raise ServicesRefused(message)


def _detail(response: httpx.Response) -> str:
    try:
        body = response.json()
    except ValueError:
        return response.text[:200]
    if isinstance(body, dict) and "detail" in body:
        return str(body["detail"])[:200]
    return str(body)[:200]
