"""The operator puts a sale into the seat and event services, idempotently: against the real
apps served in-process, and against a MockTransport for the failures they rarely produce."""

import json

import httpx
import pytest
import redis.asyncio as aioredis
from ticketing.common.redis_keys import SaleKeys
from ticketing.common.settings import CommonSettings
from ticketing.event.app import create_app as create_event_app
from ticketing.seat.app import create_app as create_seat_app
from ticketing.seat.settings import SeatSettings
from ticketing_operator.services import (
    SaleServices,
    ServicesRefused,
    ServicesUnavailable,
    ensure_sale,
)
from ticketing_operator.settings import OperatorSettings

from tests.core.conftest import Serve
from tests.operator.factories import make_spec


@pytest.fixture
async def real_services(
    settings: CommonSettings, migrated_database: str, serve: Serve
) -> SaleServices:
    events = await serve(create_event_app(settings))
    seats = await serve(create_seat_app(SeatSettings(**settings.model_dump()), events._transport))
    return SaleServices(events=events, seats=seats)


@pytest.fixture
def operator_settings(settings: CommonSettings) -> OperatorSettings:
    return OperatorSettings(**settings.model_dump())


def mocked(handler: httpx.MockTransport) -> SaleServices:
    return SaleServices(
        events=httpx.AsyncClient(transport=handler, base_url="http://event"),
        seats=httpx.AsyncClient(transport=handler, base_url="http://seat"),
    )


async def test_ensure_sale_twice_creates_one_event_and_keeps_sold_seats(
    real_services: SaleServices,
    operator_settings: OperatorSettings,
    settings: CommonSettings,
    redis_client: aioredis.Redis,
) -> None:
    spec = make_spec(venue={"rows": 3, "seatsPerRow": 4})
    seats = SaleKeys(settings.redis_key_prefix, "gig").seats
    await ensure_sale(real_services, operator_settings, "gig", spec)
    await redis_client.hset(seats, "r1-s1", "sold:abc")

    await ensure_sale(real_services, operator_settings, "gig", spec)

    listed = (await real_services.events.get("/events")).json()
    assert [(e["id"], e["venue_id"], e["title"]) for e in listed] == [
        ("gig", "gig-venue", "Spring Concert")
    ]
    states = await redis_client.hgetall(seats)
    assert len(states) == 12
    assert states[b"r1-s1"] == b"sold:abc"
    assert sum(v == b"free" for v in states.values()) == 11


async def test_ensure_sale_refuses_a_changed_venue_for_an_existing_sale(
    real_services: SaleServices, operator_settings: OperatorSettings
) -> None:
    await ensure_sale(real_services, operator_settings, "gig", make_spec())

    with pytest.raises(ServicesRefused, match="409"):
        await ensure_sale(real_services, operator_settings, "gig", make_spec(venue={"rows": 9}))


async def test_ensure_sale_calls_venue_event_inventory_with_its_own_service_token(
    operator_settings: OperatorSettings,
) -> None:
    seen: list[httpx.Request] = []

    def answer(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(200, json={})

    await ensure_sale(mocked(httpx.MockTransport(answer)), operator_settings, "gig", make_spec())

    assert [(r.method, r.url.host, r.url.path) for r in seen] == [
        ("PUT", "seat", "/venues/gig-venue"),
        ("PUT", "event", "/events/gig"),
        ("POST", "seat", "/events/gig/inventory"),
    ]
    # Its own service token, which the services know by its digest: not a login token.
    token = seen[0].headers["Authorization"].removeprefix("Bearer ")
    assert token == operator_settings.service_token
    assert "." not in token
    assert operator_settings.operator_token_accepted(token)
    assert json.loads(seen[0].content)["sections"][0] == {
        "name": "main",
        "rows": 4,
        "seats_per_row": 5,
        "price_tier": "standard",
    }


@pytest.mark.parametrize(
    ("answer", "error"),
    [
        (
            lambda _: httpx.Response(503, json={"detail": "seat store unavailable"}),
            ServicesUnavailable,
        ),
        (lambda _: httpx.Response(429, json={"detail": "slow down"}), ServicesUnavailable),
        (lambda _: httpx.Response(422, json={"detail": "bad layout"}), ServicesRefused),
    ],
    ids=["unavailable", "throttled", "refused"],
)
async def test_ensure_sale_classifies_failures_by_what_to_do_next(
    operator_settings: OperatorSettings, answer: object, error: type[Exception]
) -> None:
    services = mocked(httpx.MockTransport(answer))  # type: ignore[arg-type]

    with pytest.raises(error) as raised:
        await ensure_sale(services, operator_settings, "gig", make_spec())

    assert "PUT /venues/gig-venue answered" in str(raised.value)


async def test_ensure_sale_unreachable_service_is_retriable(
    operator_settings: OperatorSettings,
) -> None:
    def refuse(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("connection refused", request=request)

    with pytest.raises(ServicesUnavailable) as raised:
        await ensure_sale(
            mocked(httpx.MockTransport(refuse)), operator_settings, "gig", make_spec()
        )

    assert raised.value.retriable
