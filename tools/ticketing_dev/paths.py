"""Where installed artefacts are cached and where a local stack keeps its data."""

import os
from pathlib import Path


def cache_dir() -> Path:
    """The download and build cache, shared by every checkout on the machine."""
    return Path(os.environ.get("TICKETING_CACHE", Path.home() / ".cache" / "ticketing"))


def bin_dir() -> Path:
    """Binaries the install scripts build (etcd, kube-apiserver, helm)."""
    return cache_dir() / "bin"


def kafka_libs(version: str) -> Path:
    """The broker's jars as scripts/install/kafka.sh resolved them."""
    return cache_dir() / f"kafka-{version}" / "libs"


def kafka_tools(version: str) -> Path:
    """Kafka's command-line tools (kafka-tools), which run on the broker's jars beside them."""
    return cache_dir() / f"kafka-{version}" / "tools"
