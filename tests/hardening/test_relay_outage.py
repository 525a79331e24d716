"""The outbox relay while the broker is away for 30 s: holds go on being taken, the relay keeps
no transaction open while it waits for the broker, and once the broker is back every committed
message goes out and the sale settles with nothing lost."""

import asyncio
from datetime import UTC, datetime

import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine
from ticketing.retry.queue import DelayQueue

from tests.hardening.platform import HOLD_TTL_SECONDS, FaultPlatform, restart_server
from tests.hardening.sale import audit, buying, open_sale, progress_times, settled

OUTAGE_SECONDS = 30.0
SEATS = 400


async def longest_open_transaction(engine: AsyncEngine) -> float:
    """Seconds since the oldest InnoDB transaction now open began (0 when none is)."""
    query = text(
        "SELECT COALESCE(MAX(TIMESTAMPDIFF(MICROSECOND, trx_started, NOW(6))), 0)"
        " FROM information_schema.innodb_trx"
    )
    async with engine.connect() as conn:
        return int((await conn.execute(query)).scalar_one()) / 1_000_000


@pytest.mark.slow
async def test_holds_flow_and_the_relay_holds_no_transaction_while_kafka_is_away(
    fault_platform: FaultPlatform, test_id: str
) -> None:
    platform = fault_platform
    sale = await open_sale(
        platform.redis, platform.settings.redis_key_prefix, f"sale-{test_id}", SEATS
    )
    oldest: list[float] = []

    async def watch_transactions() -> None:
        while True:
            oldest.append(await longest_open_transaction(platform.engine))
            await asyncio.sleep(0.5)

    async with buying(sale, platform.reservation.base_url, platform.settings):
        await asyncio.sleep(2)
        away_at = datetime.now(UTC).replace(tzinfo=None)
        watcher = asyncio.create_task(watch_transactions())
        try:
            await restart_server(platform.stack, "kafka", OUTAGE_SECONDS)
        finally:
            watcher.cancel()
        back_at = datetime.now(UTC).replace(tzinfo=None)
    ladder = DelayQueue(platform.redis, platform.settings.redis_key_prefix)
    await settled(platform.engine, ladder, within=HOLD_TTL_SECONDS + 60)

    held, _ = await progress_times(platform.engine)
    held_while_away = sum(away_at < t < back_at for t in held)
    result = await audit(platform.engine, platform.redis, platform.settings.redis_key_prefix, sale)
    print(
        f"{held_while_away} holds while Kafka was away {OUTAGE_SECONDS:g} s; oldest open "
        f"transaction {max(oldest):.1f} s; {dict(result.statuses)}"
    )
    assert held_while_away > 0
    # Before, the relay's transaction stayed open for as long as the broker was away.
    assert max(oldest) < OUTAGE_SECONDS / 2
    assert not result.problems, "\n".join(result.problems[:20])
