"""The images of a cluster: the app image from the repository's Dockerfile, and the backing
servers' images that scripts/cluster/images.sh builds from Debian packages."""

from __future__ import annotations

import hashlib
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

from ticketing_cluster.paths import ROOT, WHEELS
from ticketing_cluster.skaffold import Artifact

# The chart's backing servers that scripts/cluster/images.sh builds from Debian packages.
BACKING = ("redis", "mariadb", "kafka")


@dataclass(frozen=True)
class Built:
    """The images scripts/cluster/images.sh built, by role: node, python, redis, mariadb, kafka."""

    by_role: dict[str, str]

    @classmethod
    def parse(cls, output: str) -> Built:
        """The script's last lines, "<role> <image>" each."""
        pairs = (line.split(" ", 1) for line in output.strip().splitlines() if " " in line)
        return cls({role: image for role, image in pairs if role in (*BACKING, "node", "python")})

    @property
    def node(self) -> str:
        return self.by_role["node"]

    @property
    def python(self) -> str:
        return self.by_role["python"]

    @property
    def backing(self) -> list[str]:
        return [self.by_role[name] for name in BACKING]

    def backing_values(self) -> dict[str, str]:
        """The chart values that point its StatefulSets at the backing servers' images."""
        values: dict[str, str] = {}
        for name in BACKING:
            repository, _, tag = self.by_role[name].rpartition(":")
            values[f"{name}.image.repository"] = repository
            values[f"{name}.image.tag"] = tag
        return values


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


def build_app(artifact: Artifact, base: str) -> str:
    """Builds the app image on `base` unless its tag (the input digest) is already there;
    returns the tag."""
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
            f"BASE_IMAGE={base}",
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
