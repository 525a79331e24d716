"""The in-cluster backing servers' containers, run from what the chart renders, with the Debian
packages' binaries (what the lead's offline images are built from) rather than an image's
entrypoint or helper scripts."""

import subprocess
import time
from pathlib import Path

import pytest
from ticketing_dev.ports import free_port
from ticketing_dev.stack import LocalStack

from tests.charts.chart import Manifest, by_kind, render


def container(manifests: list[Manifest], name: str) -> Manifest:
    statefulset = by_kind(manifests, "StatefulSet")[f"ticketing-{name}"]
    found: Manifest = statefulset["spec"]["template"]["spec"]["containers"][0]
    return found


def test_mariadb_readiness_probe_passes_against_a_real_mariadb(
    helm_binary: Path, stack: LocalStack
) -> None:
    mariadb = container(render(helm_binary), "mariadb")
    port = mariadb["ports"][0]["containerPort"]
    probe = [
        part.replace(f"--port={port}", f"--port={stack.mariadb.port}")
        for part in mariadb["readinessProbe"]["exec"]["command"]
    ]

    try:
        result = subprocess.run(probe, capture_output=True, text=True, timeout=30, check=False)
    except FileNotFoundError as missing:
        pytest.fail(f"the probe's command is not in Debian's mariadb-server: {missing}")

    assert result.returncode == 0, result.stdout + result.stderr


def test_mariadb_readiness_probe_fails_when_nothing_answers(helm_binary: Path) -> None:
    mariadb = container(render(helm_binary), "mariadb")
    port = mariadb["ports"][0]["containerPort"]
    probe = [
        part.replace(f"--port={port}", f"--port={free_port()}")
        for part in mariadb["readinessProbe"]["exec"]["command"]
    ]

    result = subprocess.run(probe, capture_output=True, text=True, timeout=60, check=False)

    assert result.returncode != 0


def test_redis_container_runs_from_its_own_command_and_passes_its_probe(
    helm_binary: Path, tmp_path: Path
) -> None:
    redis = container(render(helm_binary), "redis")
    assert "command" in redis, "the container relies on the image's entrypoint"
    data = redis["volumeMounts"][0]["mountPath"]
    port = free_port()
    args = [str(tmp_path) if arg == data else arg for arg in redis["args"]]
    server = subprocess.Popen(
        [*redis["command"], *args, "--port", str(port)],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    try:
        deadline = time.monotonic() + 20
        while True:
            cli, *command = redis["readinessProbe"]["exec"]["command"]
            probe = subprocess.run(
                [cli, "-p", str(port), *command],
                capture_output=True, text=True, timeout=10, check=False,
            )  # fmt: skip
            if probe.stdout.strip() == "PONG" or time.monotonic() > deadline:
                break
            time.sleep(0.2)
    finally:
        server.terminate()
        server.wait(timeout=10)

    assert probe.stdout.strip() == "PONG"
    assert (tmp_path / "appendonlydir").is_dir(), "the data directory is not the volume"
