"""A running sale on a three-node Kafka cluster (ticketing_dev.kafka_trio, every topic three
copies and two in sync, producers acks=all) while its nodes go down one at a time: a broker
killed with SIGKILL, then the active controller killed, then all three restarted one after
another as an operator rolls an upgrade. Each killed node is started again and caught up before
the next fault, as an operator would. Afterwards no seat is sold twice, no accepted reservation
or kept payment is lost and every reservation has ended; the test prints how long
confirmations stalled around each fault (docs/reliability.md keeps the figures). Then the
smoke sale of tests/loadtest runs on the same cluster: the sale suites run here on three
brokers, as everywhere else on single servers."""

import asyncio
import time
import uuid
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from pathlib import Path

import pytest
from ticketing.retry.queue import DelayQueue
from ticketing_dev.kafka_trio import KafkaTrio
from ticketing_dev.servers import KafkaServer
from ticketing_dev.stack import LocalStack

from loadtest.platform import Platform
from tests.core.sale_kit import eventually
from tests.hardening.platform import HOLD_TTL_SECONDS, FaultPlatform, Outage
from tests.hardening.sale import audit, buying, longest_gap, open_sale, progress_times, settled
from tests.loadtest.whole_sale import play_smoke_sale

# Enough that the buyers (about ten holds a second) never run out during the three faults.
SEATS = 4000
WARMUP_SECONDS = 3.0
DOWN_SECONDS = 3.0
# Confirmations after the cluster is whole again that show the sale goes on.
CONFIRMED_AFTER = 5
# Only a hang fails these: a node back in its cluster, and the sale going on afterwards.
NODE_BACK_WITHIN = 240.0
SALE_ON_WITHIN = 120.0


def _now() -> datetime:
    """Wall-clock UTC without a zone, as the reservation timestamps are read back."""
    return datetime.now(UTC).replace(tzinfo=None)


async def _crash(trio: KafkaTrio, node: KafkaServer) -> Outage:
    """SIGKILL one node, keep it down, then start it on its data and wait until it caught up."""
    outage = Outage(node.process.name, time.monotonic())
    node.process.kill()
    await asyncio.sleep(DOWN_SECONDS)
    await asyncio.to_thread(trio.restart, node, NODE_BACK_WITHIN)
    outage.ended = time.monotonic()
    return outage


async def kill_a_broker(trio: KafkaTrio) -> Outage:
    controller = await asyncio.to_thread(trio.active_controller)
    return await _crash(trio, next(n for n in trio.nodes if n is not controller))


async def kill_the_controller(trio: KafkaTrio) -> Outage:
    return await _crash(trio, await asyncio.to_thread(trio.active_controller))


async def roll_all_three(trio: KafkaTrio) -> Outage:
    """Each node stopped (SIGTERM: a controlled shutdown), started and caught up in turn."""
    outage = Outage("every node in turn", time.monotonic())
    for node in trio.nodes:
        await asyncio.to_thread(node.process.stop)
        await asyncio.to_thread(trio.restart, node, NODE_BACK_WITHIN)
    outage.ended = time.monotonic()
    return outage


FAULTS: dict[str, Callable[[KafkaTrio], Awaitable[Outage]]] = {
    "broker killed": kill_a_broker,
    "controller killed": kill_the_controller,
    "rolling restart": roll_all_three,
}


@pytest.mark.slow
@pytest.mark.timeout(1200)
async def test_sale_survives_a_broker_the_controller_and_a_roll_of_the_kafka_cluster(
    trio_platform: FaultPlatform, test_id: str
) -> None:
    platform = trio_platform
    trio = platform.stack.kafka
    assert isinstance(trio, KafkaTrio)
    sale = await open_sale(
        platform.redis, platform.settings.redis_key_prefix, f"sale-{test_id}", SEATS
    )
    windows: list[tuple[str, datetime, Outage]] = []
    async with buying(sale, platform.reservation.base_url, platform.settings):
        await asyncio.sleep(WARMUP_SECONDS)
        for name, fault in FAULTS.items():
            fault_at = _now()
            outage = await fault(trio)
            back_at = _now()

            async def sale_goes_on(back_at: datetime = back_at) -> bool:
                _, confirmed = await progress_times(platform.engine)
                return sum(t > back_at for t in confirmed) >= CONFIRMED_AFTER

            await eventually(sale_goes_on, within=SALE_ON_WITHIN)
            windows.append((name, fault_at, outage))
        ended_at = _now()
    ladder = DelayQueue(platform.redis, platform.settings.redis_key_prefix)
    await settled(platform.engine, ladder, within=HOLD_TTL_SECONDS + 60)

    result = await audit(platform.engine, platform.redis, platform.settings.redis_key_prefix, sale)
    held, confirmed = await progress_times(platform.engine)
    ends = [at for _, at, _ in windows[1:]] + [ended_at]
    for (name, fault_at, outage), until in zip(windows, ends, strict=True):
        print(
            f"{name}: {outage.component} down or catching up {outage.seconds:.1f}s;"
            f" holds stalled {longest_gap(held, fault_at, until):.1f}s,"
            f" confirmations stalled {longest_gap(confirmed, fault_at, until):.1f}s"
        )
    print(
        f"{len(result.reservations)} reservations {dict(result.statuses)};"
        f" buyers saw {dict(sale.answers)}"
    )
    assert not result.problems, "\n".join(result.problems[:20])


@pytest.mark.slow
@pytest.mark.timeout(600)
async def test_smoke_sale_on_the_three_node_kafka_sells_every_seat_once(
    trio_stack: LocalStack, tmp_path: Path
) -> None:
    """The smoke sale of tests/loadtest, every service on the three-node cluster (after the
    faults above, on the same nodes)."""
    platform = Platform(tmp_path / "platform", uuid.uuid4().hex[:8], stack=trio_stack)
    await play_smoke_sale(platform, tmp_path / "results")
