"""The kind cluster of `./dev cluster up` for the cluster tests: created (with every image it
needs) unless it is already there, and deleted after the last of them if they created it, so
the rest of the suite does not share the machine with an idle cluster."""

import json
import os
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from ticketing_cluster import cluster as kind


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
