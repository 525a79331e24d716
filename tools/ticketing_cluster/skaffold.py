"""What `./dev cluster up` takes from skaffold.yaml, so the two cannot drift.

skaffold itself cannot run on this machine (it is not served by the Go module proxy, and no
release can be downloaded), so its file is read here: the artifact's image and Dockerfile, the
Helm release with its values files, values and value templates, and the port forward.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

TEMPLATE_FIELD = re.compile(r"\{\{\s*\.(\w+)\s*\}\}")


class SkaffoldError(ValueError):
    """skaffold.yaml lacks something the cluster command needs, or uses what it cannot read."""


@dataclass(frozen=True)
class Artifact:
    image: str
    context: Path
    dockerfile: Path


@dataclass(frozen=True)
class Release:
    name: str
    chart: Path
    namespace: str
    values_files: list[Path]
    set_values: dict[str, str]
    set_value_templates: dict[str, str]

    def values(self, image: str, tag: str) -> dict[str, str]:
        """Every value the release sets, with the image's templates filled in as skaffold would."""
        fields = {f"IMAGE_REPO_{image}": image, f"IMAGE_TAG_{image}": tag}

        def fill(template: str) -> str:
            def field(match: re.Match[str]) -> str:
                name = match.group(1)
                if name not in fields:
                    raise SkaffoldError(
                        f"setValueTemplates uses {{{{.{name}}}}}, which a local build does not have"
                    )
                return fields[name]

            return TEMPLATE_FIELD.sub(field, template)

        values = {key: fill(template) for key, template in self.set_value_templates.items()}
        values.update(self.set_values)
        return values


@dataclass(frozen=True)
class PortForward:
    resource_type: str
    resource_name: str
    namespace: str
    port: int
    local_port: int

    def command(self, kubeconfig_context: str) -> str:
        return (
            f"kubectl --context {kubeconfig_context} -n {self.namespace} port-forward "
            f"{self.resource_type}/{self.resource_name} {self.local_port}:{self.port}"
        )


@dataclass(frozen=True)
class Skaffold:
    artifact: Artifact
    release: Release
    port_forward: PortForward


def _scalar(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def load(path: Path) -> Skaffold:
    """The default pipeline of skaffold.yaml (its first artifact, release and port forward)."""
    root = path.parent
    config = yaml.safe_load(path.read_text())
    try:
        artifact = config["build"]["artifacts"][0]
        release = config["deploy"]["helm"]["releases"][0]
        forward = config["portForward"][0]
    except (KeyError, IndexError, TypeError) as exc:
        raise SkaffoldError(
            f"{path} has no artifact, Helm release or port forward: {exc!r}"
        ) from exc
    context = root / artifact.get("context", ".")
    return Skaffold(
        artifact=Artifact(
            image=artifact["image"],
            context=context,
            dockerfile=context / artifact.get("docker", {}).get("dockerfile", "Dockerfile"),
        ),
        release=Release(
            name=release["name"],
            chart=root / release["chartPath"],
            namespace=release.get("namespace", "default"),
            values_files=[root / name for name in release.get("valuesFiles", [])],
            set_values={k: _scalar(v) for k, v in release.get("setValues", {}).items()},
            set_value_templates={
                k: str(v) for k, v in release.get("setValueTemplates", {}).items()
            },
        ),
        port_forward=PortForward(
            resource_type=forward["resourceType"],
            resource_name=forward["resourceName"],
            namespace=forward.get("namespace", release.get("namespace", "default")),
            port=int(forward["port"]),
            local_port=int(forward.get("localPort", forward["port"])),
        ),
    )
