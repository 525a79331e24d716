"""Shared pieces of the reservation and payment tests: a sale's seats, a movable clock,
the services wired to the test's real servers, and reading what reached a Kafka topic."""

import asyncio
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

import redis.asyncio as aioredis
from aiokafka import AIOKafkaConsumer
from sqlalchemy import func
from sqlalchemy.ext.asyncio import AsyncEngine
from sqlmodel import select
from sqlmodel.ext.asyncio.session import AsyncSession
from ticketing.common.envelope import Envelope
from ticketing.common.redis_keys import SaleKeys
from ticketing.common.settings import CommonSettings
from ticketing.common.sqltypes import utcnow
from ticketing.payment.settings import PaymentSettings
from ticketing.reservation.models import Ticket
from ticketing.reservation.settings import ReservationSettings

# The largest batch of the `small_topic` fixture's topic; the client's own limit (1 MiB) lets a
# larger one reach the broker, which refuses it.
SMALL_TOPIC_MAX_BYTES = 1000


@dataclass
class Clock:
    """A clock a test moves forward instead of sleeping through a hold's TTL."""

    offset: timedelta = field(default_factory=timedelta)

    def __call__(self) -> datetime:
        return utcnow() + self.offset

    def advance(self, seconds: float) -> None:
        self.offset += timedelta(seconds=seconds)


def seat_ids(count: int) -> list[str]:
    return [f"A-{n}" for n in range(1, count + 1)]


async def make_sale(redis: aioredis.Redis, prefix: str, seats: int = 10) -> str:
    """A new event with `seats` free seats, loaded the way the seat service loads them."""
    event_id = f"ev-{uuid.uuid4().hex[:8]}"
    key = SaleKeys(prefix, event_id).seats
    async with redis.pipeline(transaction=False) as pipe:
        for seat in seat_ids(seats):
            pipe.hsetnx(key, seat, "free")
        await pipe.execute()
    return event_id


async def seat_states(redis: aioredis.Redis, prefix: str, event_id: str) -> dict[str, str]:
    raw = await redis.hgetall(SaleKeys(prefix, event_id).seats)
    return {k.decode(): v.decode() for k, v in raw.items()}


async def tickets_by_seat(engine: AsyncEngine, event_id: str) -> dict[str, list[str]]:
    """Seat -> reservations holding a ticket for it (more than one would be an oversell)."""
    async with AsyncSession(engine) as session:
        rows = (await session.exec(select(Ticket).where(Ticket.event_id == event_id))).all()
    sold: dict[str, list[str]] = {}
    for ticket in rows:
        sold.setdefault(ticket.seat_id, []).append(ticket.reservation_id)
    return sold


async def count_tickets(engine: AsyncEngine, event_id: str) -> int:
    async with AsyncSession(engine) as session:
        query = select(func.count()).select_from(Ticket).where(Ticket.event_id == event_id)
        return int((await session.exec(query)).one())


def reservation_settings(settings: CommonSettings, **overrides: object) -> ReservationSettings:
    values = {**settings.model_dump(), "outbox_poll_seconds": 0.1, "sweep_interval_seconds": 0.2}
    return ReservationSettings.model_validate({**values, **overrides})


def payment_settings(settings: CommonSettings, **overrides: object) -> PaymentSettings:
    values = {**settings.model_dump(), "payment_gateway_latency_seconds": 0.0}
    return PaymentSettings.model_validate({**values, **overrides})


async def read_records(bootstrap: str, topic: str, count: int, within: float = 30.0) -> list[Any]:
    """The first `count` records of `topic`, read from the beginning by a fresh group."""
    consumer = AIOKafkaConsumer(
        topic,
        bootstrap_servers=bootstrap,
        group_id=f"reader-{uuid.uuid4().hex[:8]}",
        auto_offset_reset="earliest",
        enable_auto_commit=False,
    )
    await consumer.start()
    received: list[Any] = []
    try:
        async with asyncio.timeout(within):
            while len(received) < count:
                batch = await consumer.getmany(timeout_ms=300)
                received += [record for records in batch.values() for record in records]
    finally:
        await consumer.stop()
    return received


async def read_topic(bootstrap: str, topic: str, count: int) -> list[Envelope]:
    return [Envelope.from_bytes(r.value) for r in await read_records(bootstrap, topic, count)]


async def eventually(check: Callable[[], Awaitable[bool]], within: float = 30.0) -> None:
    """Wait until `check` is true, failing the test after `within` seconds."""
    async with asyncio.timeout(within):
        # The state polled lives in MySQL and Redis, which have nothing to wait on.
        while True:
            if await check():
                return
            await asyncio.sleep(0.1)
