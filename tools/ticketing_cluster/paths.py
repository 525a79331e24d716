"""Where the cluster command finds the repository, the cache and the binaries it runs."""

from __future__ import annotations

import os
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
SKAFFOLD = ROOT / "skaffold.yaml"
KIND_CONFIG = ROOT / "manifests" / "kind-cluster.yaml"
SAMPLE_SALE = ROOT / "manifests" / "samples" / "spring-concert.yaml"
ENGINE_SCRIPT = ROOT / "scripts" / "cluster" / "engine.sh"
IMAGES_SCRIPT = ROOT / "scripts" / "cluster" / "images.sh"
WHEELS = ROOT / ".wheels"


def cache() -> Path:
    return Path(os.environ.get("TICKETING_CACHE", Path.home() / ".cache" / "ticketing"))


def binary(name: str) -> Path:
    """kind and the node's binaries (kindnode.sh), else kubectl and helm (controlplane.sh)."""
    for directory in (cache() / "kind" / "bin", cache() / "bin"):
        if os.access(directory / name, os.X_OK):
            return directory / name
    raise FileNotFoundError(
        f"{name} is not built in {cache()}: run ./dev cluster up, which installs it"
    )
