"""A payment outage in the cluster scales the retry workers, and `helm upgrade` keeps the count.

While the payments table is away, every charge fails; the failed requests go down the retry
ladder into the Redis delay queue, and the operator running in the cluster scales the
retry-worker Deployment to its maximum. The new pods must actually run. Once the table is back,
the backlog drains, and after the cool-down the operator scales back to its minimum. Then a
`helm upgrade` that changes the workers' pod template must keep the count the operator chose,
because the chart never sets that Deployment's replicas.
"""

import asyncio
from typing import Any

import pytest

from tests.cluster.conftest import Kind, wait_until
from tests.cluster.sale import play_smoke_sale

pytestmark = [pytest.mark.cluster, pytest.mark.timeout(2700)]

# One parked message per worker, so the smoke sale's few failures reach the maximum; a minimum
# above the chart's default of one, so the upgrade below can tell "kept" from "reset".
POLICY = {"minReplicas": 2, "maxReplicas": 3, "backlogPerReplica": 1, "cooldownSeconds": 20}
UPGRADED_CPU_REQUEST = "11m"


def workers(kind_cluster: Kind) -> dict[str, Any]:
    deployment: dict[str, Any] = kind_cluster.get(
        "deployment", f"{kind_cluster.release}-retry-worker"
    )
    return deployment


def sale_status(kind_cluster: Kind) -> dict[str, Any]:
    """The retry-worker status of the one sale in the namespace."""
    (sale,) = kind_cluster.get("te")["items"]
    status: dict[str, Any] = sale.get("status", {}).get("retryWorkers") or {}
    return status


def running(kind_cluster: Kind, replicas: int) -> bool:
    deployment = workers(kind_cluster)
    status = deployment["status"]
    return bool(
        deployment["spec"]["replicas"] == replicas
        and status.get("readyReplicas") == status.get("updatedReplicas") == replicas
    )


async def test_a_payment_outage_scales_the_retry_workers_up_and_back_and_upgrade_keeps_them(
    kind_cluster: Kind,
) -> None:
    # Every other sale, the sample among them: each sale's policy scales the same Deployment.
    kind_cluster.kubectl("delete", "te", "--all", "--wait=true", "--timeout=120s")
    seen: dict[str, dict[str, Any]] = {}

    async def payment_outage() -> None:
        await asyncio.to_thread(kind_cluster.mariadb, "RENAME TABLE payments TO payments_away")
        try:
            await asyncio.to_thread(
                wait_until,
                "the operator scaled the retry workers to 3 and all three run",
                lambda: running(kind_cluster, 3),
                180,
            )
            seen["scaled up"] = sale_status(kind_cluster)
        finally:
            await asyncio.to_thread(kind_cluster.mariadb, "RENAME TABLE payments_away TO payments")
        await asyncio.to_thread(
            wait_until,
            "the operator scaled the retry workers back to 2 after the cool-down",
            lambda: running(kind_cluster, 2),
            300,
        )
        seen["scaled down"] = sale_status(kind_cluster)

    sale = await play_smoke_sale(
        kind_cluster, during=payment_outage, extra={"retryWorkers": POLICY}
    )

    assert seen["scaled up"]["replicas"] == 3
    assert seen["scaled up"]["backlog"] > 0, seen
    assert seen["scaled down"]["replicas"] == 2
    # The status's reason moves on to "steady" at the next tick, which a busy machine may see
    # first; the Events keep each step.
    events = kind_cluster.get("events", "--field-selector", "reason=RetryWorkersScaled")["items"]
    assert {"2 -> 3", "3 -> 2"} <= {event["message"].split(":")[0] for event in events}
    assert sale.integrity.oversold == 0
    assert sale.integrity.lost_reservations == 0
    assert sale.integrity.confirmed_without_ticket == 0
    assert sale.pending == 0, "a reservation was left PENDING after its hold expired"
    assert sale.integrity.tickets > 0, sale.record.outcomes

    kind_cluster.helm(
        "upgrade", kind_cluster.release, str(kind_cluster.target.pipeline.release.chart),
        "--reuse-values", "--wait", "--timeout", "300s",
        "--set", f"components.retry-worker.resources.requests.cpu={UPGRADED_CPU_REQUEST}",
    )  # fmt: skip
    wait_until("the upgraded retry workers run", lambda: running(kind_cluster, 2), 300)

    (container,) = workers(kind_cluster)["spec"]["template"]["spec"]["containers"]
    assert container["resources"]["requests"]["cpu"] == UPGRADED_CPU_REQUEST
    assert workers(kind_cluster)["spec"]["replicas"] == 2
