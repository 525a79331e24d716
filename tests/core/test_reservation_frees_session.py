"""A confirmed buyer gives their waiting-room slot back at once, not when their session expires."""

import time

import pytest
import redis.asyncio as aioredis
from sqlalchemy.ext.asyncio import AsyncEngine
from ticketing.common.envelope import Envelope
from ticketing.common.redis_keys import SaleKeys
from ticketing.common.settings import CommonSettings
from ticketing.common.topics import RESERVATION_PAID
from ticketing.reservation.consumers import payment_outcome_handler
from ticketing.reservation.models import ReservationStatus
from ticketing.reservation.service import ReservationService

from tests.core.sale_kit import make_sale, reservation_settings, seat_states


@pytest.fixture
def service(
    engine: AsyncEngine, redis_client: aioredis.Redis, settings: CommonSettings
) -> ReservationService:
    return ReservationService(engine, redis_client, reservation_settings(settings))


def paid(reservation_id: str) -> Envelope:
    return Envelope.new(RESERVATION_PAID, reservation_id, {"reservation_id": reservation_id})


async def admit(redis: aioredis.Redis, keys: SaleKeys, *users: str) -> None:
    """Put users in the active set the way the queue's ADMIT does: member = user id, scored by
    when their session expires."""
    await redis.zadd(keys.active, {user: time.time() + 120 for user in users})


async def test_confirmed_buyer_leaves_the_active_set_and_other_sessions_stay(
    service: ReservationService, redis_client: aioredis.Redis, settings: CommonSettings
) -> None:
    event = await make_sale(redis_client, settings.redis_key_prefix, seats=4)
    keys = SaleKeys(settings.redis_key_prefix, event)
    await admit(redis_client, keys, "alice", "bob")
    reservation = await service.reserve("alice", event, ["A-1"])
    handle = payment_outcome_handler(service)

    await handle(paid(reservation.id))
    await handle(paid(reservation.id))  # a redelivery changes nothing

    confirmed = await service.get("alice", reservation.id)
    assert confirmed.status is ReservationStatus.CONFIRMED
    members = {m.decode() for m in await redis_client.zrange(keys.active, 0, -1)}
    assert members == {"bob"}


async def test_confirmation_stands_when_the_active_set_cannot_be_updated(
    service: ReservationService,
    redis_client: aioredis.Redis,
    settings: CommonSettings,
    caplog: pytest.LogCaptureFixture,
) -> None:
    event = await make_sale(redis_client, settings.redis_key_prefix, seats=4)
    keys = SaleKeys(settings.redis_key_prefix, event)
    # Not a sorted set: Redis refuses the ZREM with WRONGTYPE.
    await redis_client.set(keys.active, "not-a-sorted-set")
    reservation = await service.reserve("alice", event, ["A-1"])

    await payment_outcome_handler(service)(paid(reservation.id))

    confirmed = await service.get("alice", reservation.id)
    assert confirmed.status is ReservationStatus.CONFIRMED
    states = await seat_states(redis_client, settings.redis_key_prefix, event)
    assert states["A-1"] == f"sold:{reservation.id}"
    assert "could not end the buyer's waiting-room session" in caplog.text
