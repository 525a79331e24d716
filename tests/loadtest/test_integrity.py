"""The after-run checks on real MariaDB and Redis: a seat sold twice or a lost reservation shows."""

import asyncio
import json
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta

import pytest
import redis.asyncio as aioredis
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine
from ticketing.common.redis_keys import SaleKeys
from ticketing.common.settings import CommonSettings
from ticketing.migrations.run import upgrade

from loadtest.crowd.recorder import SeenReservation
from loadtest.integrity import check_integrity
from loadtest.report.record import Integrity

EVENT = "integrity-sale"


@pytest.fixture
async def engine(database_url: str) -> AsyncIterator[AsyncEngine]:
    # Alembic's environment runs its own event loop, so it cannot run on the test's loop.
    await asyncio.to_thread(upgrade, database_url)
    engine = create_async_engine(database_url)
    try:
        yield engine
    finally:
        await engine.dispose()


async def add_reservation(
    engine: AsyncEngine, rid: str, seats: list[str], status: str, expires_in: float = 60
) -> None:
    now = datetime.now(UTC).replace(tzinfo=None)
    async with engine.begin() as conn:
        await conn.execute(
            text(
                "INSERT INTO reservations (id, event_id, user_id, seat_ids, status, expires_at,"
                " refund_requested, created_at, updated_at)"
                " VALUES (:id, :e, 'u', :seats, :status, :exp, 0, :now, :now)"
            ),
            {"id": rid, "e": EVENT, "seats": json.dumps(seats), "status": status,
             "exp": now + timedelta(seconds=expires_in), "now": now},
        )  # fmt: skip
        if status == "CONFIRMED":
            for seat in seats:
                await conn.execute(
                    text(
                        "INSERT IGNORE INTO tickets (event_id, seat_id, reservation_id, user_id,"
                        " issued_at) VALUES (:e, :seat, :id, 'u', :now)"
                    ),
                    {"e": EVENT, "seat": seat, "id": rid, "now": now},
                )


async def check(
    engine: AsyncEngine,
    redis_client: aioredis.Redis,
    settings: CommonSettings,
    seen: dict[str, SeenReservation] | None = None,
) -> Integrity:
    return await check_integrity(
        engine, redis_client, settings.redis_key_prefix, EVENT, 10, seen or {}, settle_seconds=30
    )


async def test_clean_sale_has_no_oversold_or_lost_reservation(
    engine: AsyncEngine, redis_client: aioredis.Redis, settings: CommonSettings
) -> None:
    await add_reservation(engine, "a", ["r1-s1", "r1-s2"], "CONFIRMED")
    await add_reservation(engine, "b", ["r1-s3"], "EXPIRED", expires_in=-100)
    await redis_client.hset(
        SaleKeys(settings.redis_key_prefix, EVENT).seats,
        mapping={"r1-s1": "sold:a", "r1-s2": "sold:a", "r1-s3": "free"},
    )

    integrity = await check(
        engine, redis_client, settings, {"a": SeenReservation(["r1-s1", "r1-s2"], "CONFIRMED")}
    )

    assert integrity.model_dump() == {
        "tickets": 2, "oversold": 0, "lost_reservations": 0,
        "confirmed_without_ticket": 0, "expired_reservations": 1,
    }  # fmt: skip


async def test_seat_confirmed_to_two_reservations_counts_as_oversold(
    engine: AsyncEngine, redis_client: aioredis.Redis, settings: CommonSettings
) -> None:
    await add_reservation(engine, "a", ["r1-s1"], "CONFIRMED")
    await add_reservation(engine, "b", ["r1-s1"], "CONFIRMED")

    integrity = await check(engine, redis_client, settings)

    assert integrity.oversold == 1
    assert integrity.confirmed_without_ticket == 1


async def test_reservation_pending_long_after_expiry_or_missing_counts_as_lost(
    engine: AsyncEngine, redis_client: aioredis.Redis, settings: CommonSettings
) -> None:
    await add_reservation(engine, "stuck", ["r1-s1"], "PENDING", expires_in=-120)
    seen = {"never-stored": SeenReservation(["r1-s2"])}

    integrity = await check(engine, redis_client, settings, seen)

    assert integrity.lost_reservations == 2
