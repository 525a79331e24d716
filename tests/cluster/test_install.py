"""`./dev cluster up` on a real kind cluster: every workload of the chart runs, and the
operator running in the cluster fills in a sale's status."""

import time
from typing import Any

import pytest

from tests.cluster.conftest import Kind, future_sale

# The first test builds the images and creates the cluster (minutes on a warm cache, about
# 30 on a cold one), inside its own timeout.
pytestmark = [pytest.mark.cluster, pytest.mark.timeout(2700)]


def test_every_workload_of_the_chart_is_ready_and_the_migration_completed(
    kind_cluster: Kind,
) -> None:
    deployments = kind_cluster.get("deployments")["items"]
    statefulsets = kind_cluster.get("statefulsets")["items"]
    jobs = kind_cluster.get("jobs")["items"]

    assert {d["metadata"]["name"].removeprefix("ticketing-") for d in deployments} >= {
        "user", "event", "seat", "queue", "reservation", "payment", "gateway",
        "retry-consumer", "retry-worker", "operator",
    }  # fmt: skip
    for deployment in deployments:
        status = deployment["status"]
        assert status.get("availableReplicas", 0) == status.get("replicas"), deployment["metadata"][
            "name"
        ]
    assert {s["metadata"]["name"].removeprefix("ticketing-") for s in statefulsets} == {
        "redis", "mariadb", "kafka",
    }  # fmt: skip
    for statefulset in statefulsets:
        assert statefulset["status"].get("readyReplicas") == 1, statefulset["metadata"]["name"]
    assert jobs and all(job["status"].get("succeeded", 0) >= 1 for job in jobs)


def test_every_pod_of_the_cluster_runs(kind_cluster: Kind) -> None:
    pods = kind_cluster.get("pods", "--all-namespaces")["items"]

    phases = {
        f"{pod['metadata']['namespace']}/{pod['metadata']['name']}": pod["status"]["phase"]
        for pod in pods
    }
    assert {"kube-system", "local-path-storage", kind_cluster.namespace} <= {
        name.split("/")[0] for name in phases
    }
    assert all(phase in ("Running", "Succeeded") for phase in phases.values()), phases


def test_the_operator_in_the_cluster_fills_in_a_sales_status(kind_cluster: Kind) -> None:
    name = "status-check"
    kind_cluster.apply_sale(name, future_sale("Status check", rows=2, seats_per_row=5))
    try:
        deadline = time.monotonic() + 120
        status: dict[str, Any] = {}
        while time.monotonic() < deadline:
            status = kind_cluster.get("te", name).get("status", {})
            # The status timer ticks from the start; the stock counts once the sale is in
            # the services.
            if (
                status.get("services", {}).get("synced")
                and "waiting" in status.get("queue", {})
                and status.get("seats", {}).get("remaining")
            ):
                break
            time.sleep(2)
        columns = kind_cluster.kubectl("get", "te", name).splitlines()

        assert status.get("phase") == "Scheduled", status
        assert status["seats"]["remaining"] == 10, status
        assert columns[0].split()[:6] == ["NAME", "PHASE", "TPS", "WAITING", "SOLD", "REMAINING"]
        assert columns[1].split()[:6] == [name, "Scheduled", "5", "0", "0", "10"]
    finally:
        kind_cluster.kubectl("delete", "te", name, "--wait=true", "--timeout=120s")
