"""The images of a cluster: the app image from the repository's Dockerfile, and the backing
servers' images that scripts/cluster/images.sh builds from Debian packages."""

from __future__ import annotations

import hashlib
import subprocess
import sys
from pathlib import Path

from ticketing_cluster.paths import ROOT, WHEELS
from ticketing_cluster.skaffold import Artifact

# The app image's base where no registry can be reached (scripts/cluster/images.sh).
PYTHON_BASE = "ticketing.local/python:3.11-bookworm"

# The chart's backing servers, built from Debian packages by scripts/cluster/images.sh: the
# values that point the chart's StatefulSets at them.
BACKING_VALUES = {
    "redis.image.repository": "ticketing.local/redis",
    "redis.image.tag": "bookworm",
    "mariadb.image.repository": "ticketing.local/mariadb",
    "mariadb.image.tag": "bookworm",
    "kafka.image.repository": "ticketing.local/kafka",
    "kafka.image.tag": "4.1.1",
}


def backing_images() -> list[str]:
    names = sorted({key.split(".")[0] for key in BACKING_VALUES})
    return [
        f"{BACKING_VALUES[f'{name}.image.repository']}:{BACKING_VALUES[f'{name}.image.tag']}"
        for name in names
    ]


def context_files(artifact: Artifact) -> list[Path]:
    """The files the Dockerfile can see: git's files of the context that .dockerignore admits."""
    listed = subprocess.run(
        ["git", "ls-files", "-z", "--", "pyproject.toml", "README.md", "services", "operator"],
        cwd=artifact.context,
        check=True,
        capture_output=True,
    ).stdout.split(b"\0")
    return [artifact.context / name.decode() for name in listed if name]


def input_digest(artifact: Artifact) -> str:
    """The tag of the app image: a digest of its Dockerfile and context, like skaffold's inputDigest."""
    digest = hashlib.sha256()
    for path in [artifact.dockerfile, *sorted(context_files(artifact))]:
        if path.is_file():
            digest.update(str(path.relative_to(artifact.context)).encode())
            digest.update(path.read_bytes())
    return digest.hexdigest()[:16]


def requirements() -> list[str]:
    import tomllib

    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    return list(project["dependencies"])


def prepare_wheels() -> None:
    """The platform's dependencies as wheels in .wheels/, for a build that cannot reach PyPI.

    Docker builds here cannot verify PyPI's certificate (the sandbox intercepts TLS with its
    own authority, which only the host trusts), so pip on the host fetches the wheels and the
    Dockerfile installs them with PIP_NO_INDEX=1.
    """
    WHEELS.mkdir(exist_ok=True)
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "wheel",
            "--quiet",
            "--wheel-dir",
            str(WHEELS),
            *requirements(),
            "setuptools>=75",
            "wheel",
        ],
        check=True,
    )


def image_exists(reference: str) -> bool:
    return (
        subprocess.run(
            ["docker", "image", "inspect", reference], capture_output=True, check=False
        ).returncode
        == 0
    )


def build_app(artifact: Artifact) -> str:
    """Builds the app image unless its tag (the input digest) is already there; returns the tag."""
    tag = input_digest(artifact)
    if image_exists(f"{artifact.image}:{tag}"):
        return tag
    prepare_wheels()
    subprocess.run(
        [
            "docker",
            "build",
            "--quiet",
            "--file",
            str(artifact.dockerfile),
            "--build-arg",
            f"BASE_IMAGE={PYTHON_BASE}",
            "--build-arg",
            "PIP_NO_INDEX=1",
            "--tag",
            f"{artifact.image}:{tag}",
            str(artifact.context),
        ],
        check=True,
        stdout=subprocess.DEVNULL,
    )
    return tag
