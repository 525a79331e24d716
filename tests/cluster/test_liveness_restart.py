"""A wedged loop gets its pod restarted by the kubelet, and only that pod.

The reservation service runs with a 5 s liveness period for its loops. A MariaDB session then
takes `LOCK TABLES reservation_outbox WRITE` and keeps it: the outbox relay's next claim waits
for the lock with no time-out, while the process's HTTP server goes on answering. `/healthz`
answers 503 naming the late loop, the kubelet's liveness probe fails three times and the
kubelet restarts the container. (A hung Redis would not do: the Redis client gives up on a read
after 5 s, so its loops fail and retry, alive but not ready.) Nothing else uses the table, and
every other component keeps the chart's 60 s period: none of them is restarted.
"""

import threading
from typing import Any

import pytest

from tests.cluster.conftest import Kind, wait_until

pytestmark = [pytest.mark.cluster, pytest.mark.timeout(900)]

LIVENESS_SECONDS = "5"
# Long enough for 5.5 s of the relay's silence plus three failed probes 10 s apart.
LOCK_SECONDS = 60


def restarts(kind_cluster: Kind) -> dict[str, int]:
    """Container restarts by pod, for every pod of the release not being deleted."""
    pods = kind_cluster.get("pods", "-l", f"app.kubernetes.io/instance={kind_cluster.release}")
    return {
        pod["metadata"]["name"]: sum(
            c.get("restartCount", 0) for c in pod["status"].get("containerStatuses", [])
        )
        for pod in pods["items"]
        if "deletionTimestamp" not in pod["metadata"] and pod["status"]["phase"] == "Running"
    }


def reservation_env(kind_cluster: Kind, env: str) -> None:
    kind_cluster.helm(
        "upgrade", kind_cluster.release, str(kind_cluster.target.pipeline.release.chart),
        "--reuse-values", "--wait", "--timeout", "300s",
        "--set-json", f"components.reservation.env={env}",
    )  # fmt: skip
    kind_cluster.kubectl(
        "rollout", "status", f"deployment/{kind_cluster.release}-reservation", "--timeout=300s"
    )


def pod_events(kind_cluster: Kind, pod: str, reason: str) -> list[str]:
    events = kind_cluster.get(
        "events", "--field-selector", f"involvedObject.name={pod},reason={reason}"
    )["items"]
    return [event["message"] for event in events]


def test_a_wedged_loop_gets_its_pod_restarted_by_the_kubelet(kind_cluster: Kind) -> None:
    reservation_env(
        kind_cluster, f'[{{"name": "TICKETING_LIVENESS_SECONDS", "value": "{LIVENESS_SECONDS}"}}]'
    )
    try:
        before = restarts(kind_cluster)
        (pod,) = [name for name in before if "-reservation-" in name]
        lock = threading.Thread(
            target=kind_cluster.mariadb,
            args=(f"LOCK TABLES reservation_outbox WRITE; SELECT SLEEP({LOCK_SECONDS})",),
        )
        lock.start()
        try:
            wait_until(
                "the kubelet decided to restart the reservation pod",
                lambda: any(
                    "failed liveness probe" in message
                    for message in pod_events(kind_cluster, pod, "Killing")
                ),
                LOCK_SECONDS,
            )
        finally:
            lock.join()
        wait_until(
            "the reservation pod's container restarted",
            lambda: restarts(kind_cluster).get(pod, 0) > before[pod],
            120,
        )
        after: dict[str, Any] = restarts(kind_cluster)
        # With the table free again, the restarted pod becomes ready.
        kind_cluster.kubectl(
            "rollout", "status", f"deployment/{kind_cluster.release}-reservation",
            "--timeout=300s",
        )  # fmt: skip
    finally:
        reservation_env(kind_cluster, "[]")

    failures = pod_events(kind_cluster, pod, "Unhealthy")
    assert any(
        m.startswith("Liveness probe failed") and "statuscode: 503" in m for m in failures
    ), failures
    assert {name: n for name, n in after.items() if name != pod and n != before.get(name, n)} == {}
