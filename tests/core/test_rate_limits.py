"""Per-user rate limits on holds, counted by the hold script on the real Redis, and holds
refused with 429."""

import uuid

import httpx
import pytest
import redis.asyncio as aioredis
from ticketing.common.ratelimit import RateRule
from ticketing.common.redis_keys import SaleKeys
from ticketing.common.settings import CommonSettings
from ticketing.reservation.app import create_app as create_reservation_app
from ticketing.reservation.holds import SeatHolds, SeatsTaken, TooManyHolds

from tests.core.conftest import Serve
from tests.core.sale_kit import eventually, make_sale, reservation_settings
from tests.core.test_reservation_api import buyer_headers

HOLDS_ALLOWED = 3


@pytest.fixture
async def reservations(
    migrated_database: str, serve: Serve, settings: CommonSettings
) -> httpx.AsyncClient:
    app = create_reservation_app(
        reservation_settings(settings, hold_rate_limit=HOLDS_ALLOWED, hold_rate_window_seconds=30)
    )
    return await serve(app)


async def hold(
    reservations: httpx.AsyncClient, settings: CommonSettings, user: str, event: str, seat: str
) -> httpx.Response:
    return await reservations.post(
        f"/events/{event}/reservations",
        json={"seat_ids": [seat]},
        headers=buyer_headers(settings, user, event),
    )


async def test_hold_over_the_limit_gets_429_with_retry_after_and_reason_while_others_hold(
    reservations: httpx.AsyncClient, settings: CommonSettings, redis_client: aioredis.Redis
) -> None:
    event = await make_sale(redis_client, settings.redis_key_prefix, seats=10)
    for n in range(1, HOLDS_ALLOWED + 1):
        assert (await hold(reservations, settings, "alice", event, f"A-{n}")).status_code == 201

    refused = await hold(reservations, settings, "alice", event, "A-9")

    assert refused.status_code == 429
    wait = int(refused.headers["Retry-After"])
    assert 1 <= wait <= 30
    assert refused.json()["detail"] == f"too many holds: try again in {wait} s"
    assert (await hold(reservations, settings, "bob", event, "A-9")).status_code == 201


async def test_hold_limit_counts_each_sale_separately(
    reservations: httpx.AsyncClient, settings: CommonSettings, redis_client: aioredis.Redis
) -> None:
    first = await make_sale(redis_client, settings.redis_key_prefix, seats=10)
    second = await make_sale(redis_client, settings.redis_key_prefix, seats=10)
    for n in range(1, HOLDS_ALLOWED + 2):
        await hold(reservations, settings, "carol", first, f"A-{n}")

    assert (await hold(reservations, settings, "carol", first, "A-9")).status_code == 429
    assert (await hold(reservations, settings, "carol", second, "A-1")).status_code == 201


async def _wait_to_hold(holds: SeatHolds, rule: RateRule, event: str, user: str, seat: str) -> int:
    """0 if the hold of `seat` was counted within `rule` (held or not), else the seconds it
    was told to wait."""
    try:
        await holds.hold(
            event, uuid.uuid4().hex, user, [seat], 60_000, max_seats_per_buyer=100, rate=rule
        )
    except TooManyHolds as refused:
        return refused.wait_seconds
    except SeatsTaken:
        pass
    return 0


async def test_a_buyer_may_hold_again_once_the_window_has_passed(
    redis_client: aioredis.Redis, settings: CommonSettings
) -> None:
    event = await make_sale(redis_client, settings.redis_key_prefix, seats=10)
    holds = SeatHolds(redis_client, settings.redis_key_prefix)
    # Long enough that the four attempts fall in one window however loaded the machine is.
    rule = RateRule("holds", limit=2, window_seconds=3)
    window = SaleKeys(settings.redis_key_prefix, event).rate("holds", "dave")
    answers = [await _wait_to_hold(holds, rule, event, "dave", f"A-{n}") for n in range(1, 5)]
    assert answers[:2] == [0, 0]
    assert 0 < answers[2] <= 3
    assert 0 < answers[3] <= answers[2]  # a refused attempt does not push the window's end out

    # The window ends when Redis expires its counter (the clock the limit uses), not when a
    # sleep in this test guesses it has.
    await eventually(lambda: _gone(redis_client, window), within=30)

    assert await _wait_to_hold(holds, rule, event, "dave", "A-5") == 0


async def _gone(redis: aioredis.Redis, key: str) -> bool:
    return not await redis.exists(key)


async def test_holds_are_counted_per_buyer_and_a_refused_hold_counts_too(
    redis_client: aioredis.Redis, settings: CommonSettings
) -> None:
    event = await make_sale(redis_client, settings.redis_key_prefix, seats=10)
    holds = SeatHolds(redis_client, settings.redis_key_prefix)
    rule = RateRule("holds", limit=2, window_seconds=30)
    assert await _wait_to_hold(holds, rule, event, "erin", "A-1") == 0
    # Frank's hold of a seat already taken is refused, and counted all the same.
    assert await _wait_to_hold(holds, rule, event, "frank", "A-1") == 0
    assert await _wait_to_hold(holds, rule, event, "frank", "A-2") == 0
    assert await _wait_to_hold(holds, rule, event, "frank", "A-3") == 30
    assert await _wait_to_hold(holds, rule, event, "erin", "A-3") == 0


async def test_malformed_holds_spend_nothing_of_the_buyers_allowance(
    reservations: httpx.AsyncClient, settings: CommonSettings, redis_client: aioredis.Redis
) -> None:
    event = await make_sale(redis_client, settings.redis_key_prefix, seats=10)
    headers = buyer_headers(settings, "erin", event)
    malformed = [
        {"seat_ids": []},
        {"seat_ids": ["A-1", "A-1"]},
        {"seat_ids": ["A-1", "A-2", "A-3", "A-4", "A-5"]},
        {"seat_ids": "A-1"},
        {"seats": ["A-1"]},
    ]
    for body in malformed * 2:
        answer = await reservations.post(
            f"/events/{event}/reservations", json=body, headers=headers
        )
        assert answer.status_code == 422, answer.text

    for n in range(1, HOLDS_ALLOWED + 1):
        assert (await hold(reservations, settings, "erin", event, f"A-{n}")).status_code == 201
    assert (await hold(reservations, settings, "erin", event, "A-9")).status_code == 429
