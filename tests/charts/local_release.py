"""The chart's pods run as local processes: each container's rendered environment, with the
in-cluster addresses of the backing servers and Services mapped to the test stack's loopback
ports, and nothing else from this machine.

In a pod nothing listens on loopback, so every setting whose default is a loopback address and
which the chart leaves unset is pointed at a closed port here: a component the chart does not
wire to something it uses fails as it would in the cluster, instead of finding a developer's
server on the default port.
"""

import base64
import importlib
import os
import pkgutil
import re
import subprocess
import time
import urllib.error
import urllib.request
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path

import ticketing
import ticketing_operator
from ticketing.common.settings import CommonSettings
from ticketing_dev.ports import free_port

from tests.charts.chart import Manifest, by_kind

STARTUP_SECONDS = 90


def container_env(manifests: list[Manifest], container: Manifest) -> dict[str, str]:
    """The container's environment as the kubelet would build it from the rendered objects."""
    configmaps = by_kind(manifests, "ConfigMap")
    secrets = by_kind(manifests, "Secret")
    env = {}
    for variable in container.get("env", []):
        source = variable.get("valueFrom")
        if source is None:
            env[variable["name"]] = str(variable["value"])
        elif "configMapKeyRef" in source:
            ref = source["configMapKeyRef"]
            env[variable["name"]] = configmaps[ref["name"]]["data"][ref["key"]]
        else:
            ref = source["secretKeyRef"]
            encoded = secrets[ref["name"]]["data"][ref["key"]]
            env[variable["name"]] = base64.b64decode(encoded).decode()
    return env


def _settings_classes() -> Iterator[type[CommonSettings]]:
    for package in (ticketing, ticketing_operator):
        for module in pkgutil.walk_packages(package.__path__, f"{package.__name__}."):
            if module.name.endswith(".settings"):
                importlib.import_module(module.name)
    pending: list[type[CommonSettings]] = [CommonSettings]
    while pending:
        cls = pending.pop()
        yield cls
        pending.extend(cls.__subclasses__())


def loopback_defaults() -> dict[str, str]:
    """Every TICKETING_* setting of any component whose default is a loopback address."""
    found = {}
    for cls in _settings_classes():
        for name, info in cls.model_fields.items():
            if isinstance(info.default, str) and "127.0.0.1" in info.default:
                found[f"TICKETING_{name.upper()}"] = info.default
    return found


@dataclass
class Addresses:
    """Where, on this machine, each in-cluster address of the release answers."""

    redis_url: str
    database_url: str
    kafka_bootstrap: str
    services: dict[str, int] = field(default_factory=dict)  # component -> local port

    def localise(self, value: str, fullname: str) -> str:
        value = re.sub(rf"^redis://{fullname}-redis:6379/0$", self.redis_url, value)
        value = re.sub(rf"^mysql\+asyncmy://[^@]*@{fullname}-mariadb:3306/\w+$",
                       self.database_url, value)  # fmt: skip
        value = re.sub(rf"^{fullname}-kafka:9092$", self.kafka_bootstrap, value)
        for component, port in self.services.items():
            value = value.replace(f"http://{fullname}-{component}:80", f"http://127.0.0.1:{port}")
        return value


@dataclass
class LocalPod:
    component: str
    command: list[str]
    env: dict[str, str]
    port: int
    wired: frozenset[str]  # the variables the chart sets
    process: subprocess.Popen[str] | None = None

    def start(self, python: Path) -> None:
        self.process = subprocess.Popen(
            [str(python), *self.command[1:]],
            env=self.env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
        )  # fmt: skip

    def get(self, path: str, timeout: float = STARTUP_SECONDS) -> tuple[int, bytes]:
        """The first answer to GET `path` that is not a refused connection."""
        assert self.process is not None
        deadline = time.monotonic() + timeout
        while True:
            if self.process.poll() is not None:
                _, stderr = self.process.communicate()
                raise AssertionError(f"{self.component} exited {self.process.returncode}:\n"
                                     f"{stderr[-3000:]}")  # fmt: skip
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{self.port}{path}", timeout=5) as r:
                    return int(r.status), r.read()
            except urllib.error.HTTPError as error:
                return error.code, error.read()
            except (urllib.error.URLError, ConnectionError, TimeoutError):
                if time.monotonic() > deadline:
                    raise AssertionError(f"{self.component} did not answer {path}") from None
                time.sleep(0.3)

    def stop(self) -> None:
        if self.process is None or self.process.poll() is not None:
            return
        self.process.terminate()
        try:
            self.process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
        if self.process.stderr:
            self.process.stderr.close()


def local_pods(
    manifests: list[Manifest],
    addresses: Addresses,
    *,
    fullname: str = "ticketing",
    isolation: Mapping[str, str] = {},
) -> dict[str, LocalPod]:
    """One local pod per Deployment, every one on a free port; `isolation` is added to each
    environment (the test's Redis key and Kafka topic prefixes, a kubeconfig)."""
    deployments = {
        d["metadata"]["labels"]["app.kubernetes.io/component"]: d
        for d in by_kind(manifests, "Deployment").values()
    }
    ports = {component: free_port() for component in deployments}
    addresses.services.update(ports)
    closed = f"127.0.0.1:{free_port()}"
    unreachable = {
        name: re.sub(r"127\.0\.0\.1:\d+", closed, default)
        for name, default in loopback_defaults().items()
    }
    pods = {}
    for component, deployment in deployments.items():
        (container,) = deployment["spec"]["template"]["spec"]["containers"]
        rendered = container_env(manifests, container)
        own_port = str(container["ports"][0]["containerPort"]) if "ports" in container else ""
        env = {
            "PATH": os.environ["PATH"],
            **unreachable,
            **{
                # The container's own port moves to a free one, whichever variable carries it.
                name: str(ports[component]) if value == own_port else addresses.localise(value, fullname)
                for name, value in rendered.items()
            },
            "TICKETING_HTTP_HOST": "127.0.0.1",
            **isolation,
        }  # fmt: skip
        pods[component] = LocalPod(
            component, container["command"], env, ports[component], frozenset(rendered)
        )
    return pods
