"""A retry worker killed mid-claim during a sale: the payment outcomes it had claimed come back
after their lease, a second worker process sends them, and every reservation is confirmed once."""

import asyncio
import time
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import text
from ticketing.common.envelope import Envelope
from ticketing.common.redis_keys import RetryKeys
from ticketing.common.sale_config import Phase, SaleConfig, write_sale_config
from ticketing.common.topics import RESERVATION_PAID, Topics
from ticketing.retry.queue import DelayQueue, Parked
from ticketing.retry.worker import backlog

from tests.core.sale_kit import eventually
from tests.hardening.platform import FaultPlatform, frozen, service_env
from tests.hardening.sale import audit, buying, longest_gap, open_sale, progress_times
from tests.service_processes import ServiceProcess

RESERVATIONS = 100


def _paid(reservation_id: str, topic: str, n: int) -> Parked:
    """The payment outcome of a reservation as the ladder parks it after a failed delivery."""
    envelope = Envelope.new(
        RESERVATION_PAID,
        key=reservation_id,
        message_id=f"{reservation_id}:{RESERVATION_PAID}",
        payload={"reservation_id": reservation_id},
    )
    return Parked(
        member=f"{topic}:0:{n}:1",
        topic=topic,
        key=reservation_id.encode(),
        value=envelope.to_bytes(),
        headers=[],
        due_at_ms=int(time.time() * 1000),
    )


@pytest.mark.slow
async def test_retry_worker_killed_mid_claim_loses_no_payment_outcome(
    fault_platform: FaultPlatform, test_id: str, tmp_path_factory: pytest.TempPathFactory
) -> None:
    platform = fault_platform
    prefix = platform.settings.redis_key_prefix
    # The outcomes reach reservation only through the ladder in this sale, and only through
    # the two workers the test starts and kills.
    platform.payment.process.stop()
    platform.retry_worker.process.stop()
    sale = await open_sale(platform.redis, prefix, f"sale-{test_id}", RESERVATIONS * 2)
    now = datetime.now(UTC)
    # Holds outlast the test, so every outcome still finds its reservation PENDING.
    config = SaleConfig(
        event_id=sale.event_id,
        tps=10,
        max_active=10,
        hold_ttl_seconds=300,
        opens_at=now - timedelta(minutes=1),
        closes_at=now + timedelta(hours=1),
        phase=Phase.ON_SALE,
    )
    await write_sale_config(platform.redis, prefix, config)

    async def enough_held() -> bool:
        return len(sale.accepted) >= RESERVATIONS

    async with buying(sale, platform.reservation.base_url, platform.settings):
        await eventually(enough_held, within=60)
    async with platform.engine.connect() as conn:
        held = (await conn.execute(text("SELECT id FROM reservations"))).scalars().all()
    topic = Topics(platform.settings.kafka_topic_prefix).reservation_paid
    outcomes = [_paid(r, topic, n) for n, r in enumerate(sorted(held))]
    queue = DelayQueue(platform.redis, prefix)

    logs = tmp_path_factory.mktemp(f"retry-{test_id}")
    first, second = (
        ServiceProcess("retry-worker", service_env(platform.settings), logs) for _ in range(2)
    )
    claimed_key = RetryKeys(prefix).claimed(topic)
    await asyncio.to_thread(first.restart)
    # The broker frozen, the first worker's claim waits on its send: it is killed between its
    # claim and its acknowledgement, however slowly this machine polls.
    with frozen(platform.stack.kafka.processes):
        await queue.park(outcomes)

        async def claimed_some() -> bool:
            return await platform.redis.zcard(claimed_key) > 0

        await eventually(claimed_some, within=30)
        claimed = await platform.redis.zcard(claimed_key)
        first.process.kill()
    killed_at = datetime.now(UTC).replace(tzinfo=None)
    second.start()
    try:

        async def all_confirmed_and_drained() -> bool:
            # Drained too: what the dead worker had claimed comes back once its lease ends.
            _, confirmed = await progress_times(platform.engine)
            return len(confirmed) == len(outcomes) and await backlog(queue) == 0

        await eventually(all_confirmed_and_drained, within=60)
    finally:
        second.process.stop()

    result = await audit(platform.engine, platform.redis, prefix, sale, payments=False)
    _, confirmed = await progress_times(platform.engine)
    print(
        f"retry-worker-killed: {claimed} outcomes claimed at the kill;"
        f" confirmations stalled {longest_gap(confirmed, killed_at):.1f}s (lease 2s);"
        f" {len(outcomes)} outcomes, {dict(result.statuses)}"
    )
    assert result.statuses == {"CONFIRMED": len(outcomes)}
    assert not result.problems, "\n".join(result.problems[:20])
