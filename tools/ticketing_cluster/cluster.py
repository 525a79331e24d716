"""The platform on a kind cluster built offline: up, down and status.

`up` installs and starts what is missing (Docker engine, kind, the node image and the backing
servers' images, the app image), creates the cluster from manifests/kind-cluster.yaml, loads
the images, installs the chart as skaffold.yaml describes it, waits for every workload and the
migration, applies the sample sale, and says how to reach the gateway. Each step does nothing
when its result is already there.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from ticketing_cluster import images, paths, skaffold

# How long the chart's workloads may take to become ready after `helm upgrade --install`
# (image unpacking, MariaDB's first start, Kafka's, the migration): measured here at about
# 2 minutes on a quiet 2-core machine.
READY_TIMEOUT_SECONDS = 600


def say(message: str) -> None:
    print(f"==> {message}", file=sys.stderr, flush=True)


def run(command: list[str | Path], **kwargs: Any) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(part) for part in command], check=True, text=True, **kwargs)


@dataclass(frozen=True)
class Cluster:
    """A kind cluster of manifests/kind-cluster.yaml and the release skaffold.yaml installs."""

    name: str
    pipeline: skaffold.Skaffold

    @classmethod
    def from_repository(cls) -> Cluster:
        config = yaml.safe_load(paths.KIND_CONFIG.read_text())
        return cls(name=config.get("name", "kind"), pipeline=skaffold.load(paths.SKAFFOLD))

    @property
    def context(self) -> str:
        return f"kind-{self.name}"

    @property
    def namespace(self) -> str:
        return self.pipeline.release.namespace

    def kubectl(self, *args: str, **kwargs: Any) -> subprocess.CompletedProcess[str]:
        return run([paths.binary("kubectl"), "--context", self.context, *args], **kwargs)

    def kind(self, *args: str, **kwargs: Any) -> subprocess.CompletedProcess[str]:
        return run([paths.binary("kind"), *args], **kwargs)

    def exists(self) -> bool:
        listed = self.kind("get", "clusters", capture_output=True).stdout.split()
        return self.name in listed


def install() -> None:
    """The engine, kind and the node's binaries (Debian packages and Go builds), idempotent."""
    run(["bash", paths.ROOT / "scripts" / "install" / "controlplane.sh"])
    run(["bash", paths.ENGINE_SCRIPT, "install"])


def engine(action: str) -> None:
    run(["bash", paths.ENGINE_SCRIPT, action])


def engine_answers() -> bool:
    """Whether a Docker engine answers now (one of this machine's, or one `up` started)."""
    return subprocess.run(["docker", "info"], capture_output=True, check=False).returncode == 0


def build_images() -> images.Built:
    """Every image but the app's."""
    return images.Built.parse(run(["bash", paths.IMAGES_SCRIPT], stdout=subprocess.PIPE).stdout)


def kind_config(node_image: str) -> Path:
    """manifests/kind-cluster.yaml with the offline node image and the etcd it carries.

    kubeadm asks for etcd by its own pinned tag; the node carries the etcd this project builds
    (scripts/install/versions.sh), so the configuration names that tag instead.
    """
    config = yaml.safe_load(paths.KIND_CONFIG.read_text())
    etcd_version = _pinned("ETCD_VERSION").removeprefix("v")
    for node in config.get("nodes", []):
        node["image"] = node_image
    patch = f"kind: ClusterConfiguration\netcd:\n  local:\n    imageTag: {etcd_version}-0\n"
    config["kubeadmConfigPatches"] = [*config.get("kubeadmConfigPatches", []), patch]
    derived = paths.cache() / "kind" / "kind-cluster.yaml"
    derived.parent.mkdir(parents=True, exist_ok=True)
    derived.write_text(yaml.safe_dump(config, sort_keys=False))
    return derived


def _pinned(name: str) -> str:
    versions = paths.ROOT / "scripts" / "install" / "versions.sh"
    for line in versions.read_text().splitlines():
        if line.startswith(f"{name}="):
            return line.split("=", 1)[1].strip()
    raise KeyError(f"{name} is not pinned in {versions}")


def create(cluster: Cluster, node_image: str) -> None:
    if cluster.exists():
        say(f"kind cluster {cluster.name} exists")
        cluster.kind("export", "kubeconfig", "--name", cluster.name, stderr=subprocess.DEVNULL)
        return
    say(f"creating kind cluster {cluster.name} from {node_image}")
    cluster.kind(
        "create",
        "cluster",
        "--name",
        cluster.name,
        "--config",
        str(kind_config(node_image)),
        "--wait",
        "300s",
    )


def load_images(cluster: Cluster, references: list[str]) -> None:
    for reference in references:
        cluster.kind(
            "load", "docker-image", "--name", cluster.name, reference, stdout=subprocess.DEVNULL
        )


def release_values(cluster: Cluster, tag: str, built: images.Built) -> dict[str, str]:
    """skaffold.yaml's values for the release, and the offline images of the backing servers."""
    values = cluster.pipeline.release.values(cluster.pipeline.artifact.image, tag)
    values.update(built.backing_values())
    return values


def helm_install(cluster: Cluster, tag: str, built: images.Built) -> None:
    release = cluster.pipeline.release
    command: list[str | Path] = [
        paths.binary("helm"),
        "upgrade",
        "--install",
        release.name,
        release.chart,
        "--kube-context",
        cluster.context,
        "--namespace",
        release.namespace,
        "--create-namespace",
    ]
    for values_file in release.values_files:
        command += ["--values", values_file]
    for key, value in release_values(cluster, tag, built).items():
        command += ["--set-string" if key.endswith(".tag") else "--set", f"{key}={value}"]
    say(f"helm upgrade --install {release.name} ({release.chart.name}) in {release.namespace}")
    run(command, stdout=subprocess.DEVNULL)


def wait_ready(cluster: Cluster, timeout: float = READY_TIMEOUT_SECONDS) -> None:
    """Every Job of the release complete and every StatefulSet and Deployment rolled out.

    A rollout, not "available": after an upgrade the old pods keep a Deployment available while
    the new ones are still starting.
    """
    deadline = time.monotonic() + timeout

    def remaining() -> str:
        return f"--timeout={max(1, int(deadline - time.monotonic()))}s"

    say("waiting for the migration Job, the StatefulSets and the Deployments")
    namespace = ("-n", cluster.namespace)
    cluster.kubectl(
        *namespace, "wait", "job", "--all", "--for=condition=complete", remaining(),
        stdout=subprocess.DEVNULL,
    )  # fmt: skip
    for kind in ("statefulset", "deployment"):
        listed = cluster.kubectl(*namespace, "get", kind, "-o", "name", capture_output=True)
        for name in listed.stdout.split():
            cluster.kubectl(
                *namespace, "rollout", "status", name, remaining(), stdout=subprocess.DEVNULL
            )


def apply_sample_sale(cluster: Cluster) -> None:
    cluster.kubectl(
        "-n", cluster.namespace, "apply", "-f", str(paths.SAMPLE_SALE), stdout=subprocess.DEVNULL
    )


def up() -> None:
    started = time.monotonic()
    install()
    engine("up")
    cluster = Cluster.from_repository()
    built = build_images()
    tag = images.build_app(cluster.pipeline.artifact, built.python)
    create(cluster, built.node)
    load_images(cluster, [f"{cluster.pipeline.artifact.image}:{tag}", *built.backing])
    helm_install(cluster, tag, built)
    wait_ready(cluster)
    apply_sample_sale(cluster)
    say(f"the cluster is up in {time.monotonic() - started:.0f} s; every pod:")
    cluster.kubectl("get", "pods", "-A")
    say("kubectl get te:")
    cluster.kubectl("-n", cluster.namespace, "get", "te")
    say("reach the gateway (the page and every API on one origin) with:")
    print(f"    {cluster.pipeline.port_forward.command(cluster.context)}")


def down() -> None:
    cluster = Cluster.from_repository()
    try:
        if cluster.exists():
            say(f"deleting kind cluster {cluster.name}")
            cluster.kind("delete", "cluster", "--name", cluster.name)
    finally:
        engine("down")


def status() -> int:
    try:
        engine("status")
    except subprocess.CalledProcessError:
        return 1
    cluster = Cluster.from_repository()
    if not cluster.exists():
        print(f"no kind cluster {cluster.name}")
        return 1
    cluster.kubectl("get", "pods", "-A")
    return 0


def main(argv: list[str] | None = None) -> int:
    import argparse

    parser = argparse.ArgumentParser(prog="./dev cluster", description=__doc__)
    parser.add_argument("action", choices=["up", "down", "status"])
    action = parser.parse_args(argv).action
    os.environ.setdefault("TICKETING_CACHE", str(paths.cache()))
    try:
        if action == "up":
            up()
        elif action == "down":
            down()
        else:
            return status()
    except subprocess.CalledProcessError as exc:
        command = " ".join(str(part) for part in exc.cmd)
        print(f"ticketing: `{command}` failed with exit code {exc.returncode}", file=sys.stderr)
        return 1
    return 0
