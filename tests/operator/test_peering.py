"""Two operator replicas with kopf peering: the higher priority one runs the sale, the other
stays paused, and takes over when the first one stops. Asserted on kopf's own log lines, counted
per operator thread, not on how long a sleep lasted."""

import logging
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pytest
import redis.asyncio as aioredis
from kubernetes import client
from ticketing.common.sale_config import SaleConfig, read_sale_config
from ticketing_dev.controlplane import ControlPlane
from ticketing_operator.settings import OperatorSettings

from tests.operator.conftest import MANIFESTS, OperatorThread, install_crds
from tests.operator.factories import create, eventually, make_ticketevent, patch_spec

pytestmark = [pytest.mark.kube, pytest.mark.slow]

TICKS_TO_WATCH = 3
TICK_DONE = "Timer 'keep_sale_current' succeeded"


class KopfRecords(logging.Handler):
    """kopf's own log lines, with the operator thread that wrote each."""

    def __init__(self) -> None:
        super().__init__(logging.INFO)
        self.lines: list[tuple[str, str]] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append((record.threadName or "", record.getMessage()))

    def count(self, thread: str, text: str, *, since: int = 0) -> int:
        return sum(1 for name, line in self.lines[since:] if name == thread and text in line)


@contextmanager
def kopf_records() -> Iterator[KopfRecords]:
    logger = logging.getLogger("kopf")
    records = KopfRecords()
    level = logger.level
    logger.setLevel(logging.INFO)
    logger.addHandler(records)
    try:
        yield records
    finally:
        logger.removeHandler(records)
        logger.setLevel(level)


async def test_only_the_leading_replica_acts_and_the_other_takes_over(
    kube_control_plane: ControlPlane,
    kube_api: client.ApiClient,
    kube_namespace: str,
    objects: client.CustomObjectsApi,
    redis_client: aioredis.Redis,
    operator_settings: OperatorSettings,
    ticketevent_crd: str,
) -> None:
    install_crds(kube_control_plane, "crd-kopfpeering.yaml")
    kube_control_plane.kubectl(
        "apply", "-n", kube_namespace, "-f", str(MANIFESTS / "kopfpeering.yaml")
    )
    peered = operator_settings.model_copy(update={"operator_standalone": False})
    leader = OperatorThread(peered, kube_namespace, priority=100)
    follower = OperatorThread(peered, kube_namespace, priority=50)
    prefix = operator_settings.redis_key_prefix

    async def config() -> SaleConfig | None:
        return await read_sale_config(redis_client, prefix, "duet")

    async def phase_events() -> list[str]:
        events = client.CoreV1Api(kube_api).list_namespaced_event(kube_namespace).items
        return [e.message for e in events if e.reason == "PhaseChanged"]

    with kopf_records() as records:
        leader.start()
        try:
            create(objects, kube_namespace, make_ticketevent("duet", tps=50))
            await eventually(
                config, lambda c: c is not None and c.tps == 50, what="the sale configured"
            )
            # The follower joins a running sale, as a second replica does after a rollout.
            # (Replicas started at the same instant can both act once before peering sees
            # them: kopf's startup race, harmless because every handler is idempotent; see
            # docs/operator.md.)
            follower.start()
            joined = len(records.lines)

            async def peer_priorities() -> list[int]:
                peering: dict[str, Any] = objects.get_namespaced_custom_object(
                    "kopf.dev", "v1", kube_namespace, "kopfpeerings", "ticketing"
                )
                return sorted(p["priority"] for p in peering.get("status", {}).values())

            await eventually(peer_priorities, lambda p: p == [50, 100], what="both peers listed")
            listed = len(records.lines)

            async def leader_ticks() -> int:
                return records.count(leader.thread_name, TICK_DONE, since=listed)

            # kopf starts a peered operator paused until the peering shows no higher priority.
            # The leader's timer runs on; the follower, on the same cadence, runs nothing.
            await eventually(leader_ticks, lambda n: n >= TICKS_TO_WATCH, what="the leader's ticks")
            assert records.count(follower.thread_name, TICK_DONE, since=joined) == 0
            assert records.count(follower.thread_name, "Handler '", since=joined) == 0
            assert records.count(follower.thread_name, "Resuming operations") == 0
            assert await phase_events() == ["New -> OnSale"]

            leader.stop()
            patch_spec(objects, kube_namespace, "duet", {"admission": {"tps": 70}})

            await eventually(
                config, lambda c: c is not None and c.tps == 70, what="the follower to take over"
            )
            assert records.count(follower.thread_name, "Resuming operations") == 1
        finally:
            follower.stop()
            leader.stop()
