"""Two operator replicas with kopf peering: the higher priority one runs the sale, the other
waits, and takes over when the first one stops."""

import asyncio
from typing import Any

import pytest
import redis.asyncio as aioredis
from kubernetes import client
from ticketing.common.sale_config import SaleConfig, read_sale_config
from ticketing_dev.controlplane import ControlPlane
from ticketing_operator.handlers import TICK_SECONDS
from ticketing_operator.settings import OperatorSettings

from tests.operator.conftest import MANIFESTS, OperatorThread, install_crds
from tests.operator.factories import create, eventually, make_ticketevent, patch_spec

pytestmark = [pytest.mark.kube, pytest.mark.slow]


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
    leader.start()
    prefix = operator_settings.redis_key_prefix

    async def config() -> SaleConfig | None:
        return await read_sale_config(redis_client, prefix, "duet")

    async def phase_events() -> list[str]:
        events = client.CoreV1Api(kube_api).list_namespaced_event(kube_namespace).items
        return [e.message for e in events if e.reason == "PhaseChanged"]

    try:
        create(objects, kube_namespace, make_ticketevent("duet", tps=50))
        await eventually(
            config, lambda c: c is not None and c.tps == 50, what="the sale configured"
        )
        # The follower joins a running sale, as a second replica does after a rollout. (Replicas
        # started at the same instant can both act once before peering sees them: kopf's
        # startup race, harmless because every handler is idempotent; see docs/operator.md.)
        follower.start()
        await asyncio.sleep(3 * TICK_SECONDS)  # time for a second replica to act, if it would
        assert await phase_events() == ["New -> OnSale"]
        peering: dict[str, Any] = objects.get_namespaced_custom_object(
            "kopf.dev", "v1", kube_namespace, "kopfpeerings", "ticketing"
        )
        assert sorted(p["priority"] for p in peering["status"].values()) == [50, 100]

        leader.stop()
        patch_spec(objects, kube_namespace, "duet", {"admission": {"tps": 70}})

        await eventually(
            config, lambda c: c is not None and c.tps == 70, what="the follower to take over"
        )
    finally:
        follower.stop()
        leader.stop()
