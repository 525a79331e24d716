"""The sale's purchase limit: one buyer holds and buys at most `max_seats_per_buyer` seats in a
sale, counted over held and sold seats together, whatever their admission token still allows."""

import asyncio

import httpx
import pytest
import redis.asyncio as aioredis
from fastapi import FastAPI
from ticketing.common.sale_config import SaleConfig, write_sale_config
from ticketing.common.settings import CommonSettings
from ticketing.common.sqltypes import utcnow
from ticketing.reservation.app import create_app as create_reservation_app
from ticketing.reservation.lifecycle import Trigger
from ticketing.reservation.service import ReservationService

from tests.core.conftest import Serve
from tests.core.sale_kit import make_sale, reservation_settings, seat_states
from tests.core.test_reservation_api import buyer_headers

LIMIT = 3
REFUSAL = f"purchase limit: at most {LIMIT} seats per buyer in this sale"


@pytest.fixture
async def app(migrated_database: str, settings: CommonSettings) -> FastAPI:
    return create_reservation_app(reservation_settings(settings))


@pytest.fixture
async def reservations(app: FastAPI, serve: Serve) -> httpx.AsyncClient:
    return await serve(app)


async def limited_sale(redis: aioredis.Redis, prefix: str, seats: int = 10) -> str:
    event = await make_sale(redis, prefix, seats=seats)
    opens = utcnow()
    config = SaleConfig(
        event_id=event,
        tps=10,
        max_active=10,
        max_seats_per_buyer=LIMIT,
        opens_at=opens,
        closes_at=opens.replace(year=opens.year + 1),
    )
    await write_sale_config(redis, prefix, config)
    return event


async def hold(
    reservations: httpx.AsyncClient, headers: dict[str, str], event: str, *seats: str
) -> httpx.Response:
    return await reservations.post(
        f"/events/{event}/reservations", json={"seat_ids": list(seats)}, headers=headers
    )


async def test_a_confirmed_purchase_counts_against_the_limit_of_the_same_admission(
    app: FastAPI,
    reservations: httpx.AsyncClient,
    settings: CommonSettings,
    redis_client: aioredis.Redis,
) -> None:
    event = await limited_sale(redis_client, settings.redis_key_prefix)
    alice = buyer_headers(settings, "alice", event)
    bought = await hold(reservations, alice, event, "A-1", "A-2")
    assert bought.status_code == 201, bought.text
    service: ReservationService = app.state.reservations
    await service.apply(bought.json()["id"], Trigger.PAID)

    third = await hold(reservations, alice, event, "A-3")
    fourth = await hold(reservations, alice, event, "A-4")
    too_many_at_once = await hold(reservations, alice, event, "A-5", "A-6")

    assert third.status_code == 201, third.text
    assert fourth.status_code == 409
    assert fourth.json()["detail"] == f"{REFUSAL}, and you already hold or bought 3"
    assert too_many_at_once.status_code == 409
    states = await seat_states(redis_client, settings.redis_key_prefix, event)
    assert [seat for seat, state in states.items() if state != "free"] == ["A-1", "A-2", "A-3"]
    # Another buyer is not held back by Alice's limit.
    bob = buyer_headers(settings, "bob", event)
    assert (await hold(reservations, bob, event, "A-4", "A-5", "A-6")).status_code == 201


async def test_a_cancelled_hold_gives_its_seats_back_to_the_buyers_allowance(
    reservations: httpx.AsyncClient, settings: CommonSettings, redis_client: aioredis.Redis
) -> None:
    event = await limited_sale(redis_client, settings.redis_key_prefix)
    carol = buyer_headers(settings, "carol", event)
    held = await hold(reservations, carol, event, "A-1", "A-2", "A-3")
    assert held.status_code == 201, held.text
    assert (await hold(reservations, carol, event, "A-4")).status_code == 409

    cancelled = await reservations.delete(f"/reservations/{held.json()['id']}", headers=carol)

    assert cancelled.status_code == 200, cancelled.text
    assert (await hold(reservations, carol, event, "A-4", "A-5")).status_code == 201


async def test_concurrent_holds_of_one_buyer_never_pass_the_limit_together(
    reservations: httpx.AsyncClient, settings: CommonSettings, redis_client: aioredis.Redis
) -> None:
    event = await limited_sale(redis_client, settings.redis_key_prefix, seats=8)
    dave = buyer_headers(settings, "dave", event)

    answers = await asyncio.gather(
        *(hold(reservations, dave, event, f"A-{n}") for n in range(1, 9))
    )

    codes = sorted(answer.status_code for answer in answers)
    assert codes == [201] * LIMIT + [409] * (8 - LIMIT)
    refusals = {a.json()["detail"] for a in answers if a.status_code == 409}
    assert refusals == {f"{REFUSAL}, and you already hold or bought {LIMIT}"}
    states = await seat_states(redis_client, settings.redis_key_prefix, event)
    assert sum(state != "free" for state in states.values()) == LIMIT
