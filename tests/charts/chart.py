"""Where the delivery files are, and helm lint/template run on them, for the chart tests."""

import subprocess
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parents[2]
CHART = ROOT / "charts" / "ticketing"
VALUES_SETS = {
    "default": (),
    "external-backing": (CHART / "ci" / "external-backing.yaml",),
    "in-cluster-everything": (CHART / "ci" / "in-cluster-everything.yaml",),
}

Manifest = dict[str, Any]


def helm(binary: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(binary), *args], capture_output=True, text=True, timeout=120, check=False
    )


def render(
    binary: Path,
    values_files: Sequence[Path] = (),
    *sets: str,
    release: str = "ticketing",
    namespace: str = "sale",
) -> list[Manifest]:
    """The chart's objects as helm template renders them; fails with helm's own message."""
    args = ["template", release, str(CHART), "--namespace", namespace]
    for path in values_files:
        args += ["-f", str(path)]
    for assignment in sets:
        args += ["--set", assignment]
    result = helm(binary, *args)
    if result.returncode != 0:
        raise AssertionError(f"helm template failed: {result.stderr.strip()}")
    return [doc for doc in yaml.safe_load_all(result.stdout) if doc]


def by_kind(manifests: list[Manifest], kind: str) -> dict[str, Manifest]:
    return {m["metadata"]["name"]: m for m in manifests if m["kind"] == kind}


def chart_values() -> dict[str, Any]:
    values: dict[str, Any] = yaml.safe_load((CHART / "values.yaml").read_text())
    return values


def component_commands() -> dict[str, str]:
    """Each enabled component's `python -m ticketing` argument, from the chart's values."""
    return {
        name: spec["command"]
        for name, spec in chart_values()["components"].items()
        if spec["enabled"]
    }
