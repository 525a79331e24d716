"""Taking a sale and then the release away leaves nothing stuck: the operator in the cluster
removes its finalizer from a deleted TicketEvent, and `helm uninstall` removes every workload
(the kept Secret and the StatefulSets' volumes aside, by design)."""

import pytest

from tests.cluster.conftest import Kind, future_sale, wait_until

# Runs after the other cluster tests (file order): it takes the release away.
pytestmark = [pytest.mark.cluster, pytest.mark.timeout(2700)]


def test_a_deleted_sale_and_an_uninstalled_release_leave_nothing_stuck(kind_cluster: Kind) -> None:
    kind_cluster.apply_sale("goodbye", future_sale("Goodbye", rows=1, seats_per_row=5))
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
