"""The kind cluster of `./dev cluster up` for the cluster tests: created (with every image it
needs) unless it is already there, and deleted after the last of them if they created it, so
the rest of the suite does not share the machine with an idle cluster."""

import json
import os
import shutil
import subprocess
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from ticketing_cluster import cluster as kind


def future_sale(title: str, rows: int, seats_per_row: int) -> dict[str, Any]:
    """The spec of a small sale that opens in 2030: the operator syncs it and waits."""
    return {
        "title": title,
        "venue": {"rows": rows, "seatsPerRow": seats_per_row, "priceCents": 1000},
        "sale": {
            "opensAt": "2030-01-01T12:00:00Z",
            "closesAt": "2030-01-01T14:00:00Z",
            "preQueueMinutes": 30,
        },
        "admission": {"tps": 5, "maxActive": 20, "sessionTTLSeconds": 60},
        "holds": {"ttlSeconds": 60},
    }


def wait_until(condition: str, check: Callable[[], bool], seconds: float = 120) -> None:
    deadline = time.monotonic() + seconds
    while not check():
        if time.monotonic() > deadline:
            raise AssertionError(f"not within {seconds:g} s: {condition}")
        time.sleep(1)


class Kind:
    """The cluster and the release the tests drive, with kubectl at hand."""

    def __init__(self, target: kind.Cluster) -> None:
        self.target = target
        self.namespace = target.namespace
        self.release = target.pipeline.release.name

    def kubectl(self, *args: str, input: str | None = None) -> str:
        return self.target.kubectl(
            "-n", self.namespace, *args, capture_output=True, input=input
        ).stdout

    def apply_sale(self, name: str, spec: dict[str, Any]) -> None:
        """Applies a TicketEvent of this name and spec."""
        sale = {
            "apiVersion": "ticketing.dev/v1alpha1",
            "kind": "TicketEvent",
            "metadata": {"name": name},
            "spec": spec,
        }
        self.kubectl("apply", "-f", "-", input=json.dumps(sale))

    def mariadb(self, statements: str) -> None:
        """Runs statements as root in the in-cluster MariaDB, with the pod's own credentials."""
        self.kubectl(
            "exec", f"{self.release}-mariadb-0", "--", "sh", "-c",
            'mariadb -uroot -p"$MARIADB_ROOT_PASSWORD" "$MARIADB_DATABASE" -e "$0"', statements,
        )  # fmt: skip

    def get(self, *args: str) -> Any:
        return json.loads(self.kubectl("get", *args, "-o", "json"))

    def helm(self, *args: str) -> str:
        return kind.run(
            [kind.paths.binary("helm"), "--kube-context", self.target.context,
             "--namespace", self.namespace, *args],
            capture_output=True,
        ).stdout  # fmt: skip


@pytest.fixture(scope="package")
def kind_cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Kind]:
    if shutil.which("dockerd") is None and shutil.which("docker") is None:
        if os.environ.get("CI") == "true":
            pytest.fail("no Docker here, and CI=true, so the cluster tests may not be skipped")
        pytest.skip("no Docker engine: ./dev cluster up installs Debian's docker.io as root")
    kubeconfig: Path = tmp_path_factory.mktemp("kind") / "kubeconfig"
    previous_kubeconfig = os.environ.get("KUBECONFIG")
    os.environ["KUBECONFIG"] = str(kubeconfig)
    target = kind.Cluster.from_repository()
    kind.install()
    engine_was_running = kind.engine_answers()
    kind.engine("up")
    if os.environ.get("CI") == "true" and target.exists():
        # CI proves the whole path: a cluster left by an earlier run is not trusted.
        target.kind("delete", "cluster", "--name", target.name)
    created = not target.exists()
    try:
        kind.up()
        yield Kind(target)
    finally:
        if created:
            subprocess.run(
                [str(kind.paths.binary("kind")), "delete", "cluster", "--name", target.name],
                check=False,
            )
        if not engine_was_running:
            kind.engine("down")
        if previous_kubeconfig is None:
            os.environ.pop("KUBECONFIG", None)
        else:
            os.environ["KUBECONFIG"] = previous_kubeconfig
