"""Taking a sale and then the release away leaves nothing stuck: the operator in the cluster
removes its finalizer from a deleted TicketEvent, and `helm uninstall` removes every workload
(the kept Secret and the StatefulSets' volumes aside, by design)."""

import time
from collections.abc import Callable

import pytest

from tests.cluster.conftest import Kind

# Runs after the other cluster tests (file order): it takes the release away.
pytestmark = [pytest.mark.cluster, pytest.mark.timeout(2700)]

SALE = """
apiVersion: ticketing.dev/v1alpha1
kind: TicketEvent
metadata:
  name: goodbye
spec:
  title: Goodbye
  venue: {rows: 1, seatsPerRow: 5, priceCents: 1000}
  sale: {opensAt: "2030-01-01T12:00:00Z", closesAt: "2030-01-01T14:00:00Z", preQueueMinutes: 30}
  admission: {tps: 5, maxActive: 20, sessionTTLSeconds: 60}
  holds: {ttlSeconds: 60}
"""


def wait_until(condition: str, check: Callable[[], bool], seconds: float = 120) -> None:
    deadline = time.monotonic() + seconds
    while not check():
        if time.monotonic() > deadline:
            raise AssertionError(f"not within {seconds:g} s: {condition}")
        time.sleep(1)


def test_a_deleted_sale_and_an_uninstalled_release_leave_nothing_stuck(kind_cluster: Kind) -> None:
    kind_cluster.kubectl("apply", "-f", "-", input=SALE)
    wait_until(
        "the operator put its finalizer on the sale",
        lambda: bool(kind_cluster.get("te", "goodbye")["metadata"].get("finalizers")),
    )

    # Every sale, the sample that `./dev cluster up` applied among them.
    kind_cluster.kubectl("delete", "te", "--all", "--wait=true", "--timeout=120s")
    kind_cluster.helm("uninstall", kind_cluster.release, "--wait", "--timeout", "300s")

    assert kind_cluster.get("te")["items"] == []
    assert kind_cluster.get("deployments")["items"] == []
    assert kind_cluster.get("statefulsets")["items"] == []
    wait_until(
        "every pod of the release gone",
        lambda: kind_cluster.get("pods")["items"] == [],
        seconds=300,
    )
    assert kind_cluster.helm("list", "--short").split() == []
