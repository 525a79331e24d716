"""The chart wires every component to exactly what its code uses, checked by running it.

The chart is rendered and installed into the local kube-apiserver (the objects are stored, no
pod runs there), the migration Job's command runs, and every Deployment's container starts here
from its rendered environment: tests/charts/local_release.py maps the in-cluster addresses to
the test stack and points every loopback default the chart leaves unset at a closed port.
Nothing below names a component's backends or peers: what each needs is what it does.
"""

import asyncio
import json
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from kubernetes import client
from sqlalchemy import text
from sqlalchemy.ext.asyncio import create_async_engine
from ticketing.common.db import server_url
from ticketing.gateway.routes import COMPONENTS, ROUTES
from ticketing_dev.controlplane import ControlPlane
from ticketing_dev.stack import LocalStack

from tests.charts.chart import CHART, Manifest, by_kind, render
from tests.charts.local_release import Addresses, LocalPod, container_env, local_pods
from tests.kube.fixtures import service_account_kubeconfig

pytestmark = [pytest.mark.slow, pytest.mark.kube]

# The readiness check named after each backing server, and the variable that wires it.
BACKENDS = {
    "redis": "TICKETING_REDIS_URL",
    "database": "TICKETING_DATABASE_URL",
    "kafka": "TICKETING_KAFKA_BOOTSTRAP",
}
SALE = {
    "apiVersion": "ticketing.dev/v1alpha1",
    "kind": "TicketEvent",
    "metadata": {"name": "wired"},
    "spec": {
        "title": "Wired",
        "venue": {"rows": 2, "seatsPerRow": 5, "priceCents": 1000},
        "sale": {"opensAt": "2030-01-01T10:00:00Z", "closesAt": "2030-01-01T12:00:00Z"},
        "admission": {"tps": 10, "maxActive": 10},
    },
}
SYNC_SECONDS = 90


def execute(url: str, sql: str) -> None:
    async def run() -> None:
        engine = create_async_engine(server_url(url))
        async with engine.begin() as conn:
            await conn.execute(text(sql))
        await engine.dispose()

    asyncio.run(run())


@pytest.fixture(scope="module")
def namespace(kube_control_plane: ControlPlane, kube_api: client.ApiClient) -> Iterator[str]:
    name = f"wiring-{uuid.uuid4().hex[:6]}"
    client.CoreV1Api(kube_api).create_namespace({"metadata": {"name": name}})
    try:
        yield name
    finally:
        client.CoreV1Api(kube_api).delete_namespace(name)


@pytest.fixture(scope="module")
def database(stack: LocalStack) -> Iterator[str]:
    name = f"w_{uuid.uuid4().hex[:10]}"
    url = f"{stack.mariadb.url}/{name}"
    execute(url, f"CREATE DATABASE {name}")
    try:
        yield url
    finally:
        execute(url, f"DROP DATABASE IF EXISTS {name}")


@pytest.fixture(scope="module")
def manifests(helm_binary: Path, namespace: str) -> list[Manifest]:
    return render(helm_binary, namespace=namespace)


@pytest.fixture(scope="module")
def pods(
    manifests: list[Manifest],
    namespace: str,
    database: str,
    stack: LocalStack,
    kube_control_plane: ControlPlane,
    kube_api: client.ApiClient,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[dict[str, LocalPod]]:
    tmp_path = tmp_path_factory.mktemp("wiring")
    kube_control_plane.helm("install", "ticketing", str(CHART), "-n", namespace, "--wait=false")
    # The operator runs as the chart's operator ServiceAccount, with the chart's RBAC only.
    kubeconfig = service_account_kubeconfig(
        kube_control_plane, kube_api, namespace, "ticketing-operator", tmp_path / "kubeconfig"
    )
    addresses = Addresses(stack.redis.url, database, stack.kafka.bootstrap)
    prefix = uuid.uuid4().hex[:10]
    isolation = {
        "TICKETING_REDIS_KEY_PREFIX": f"w{prefix}",
        "TICKETING_KAFKA_TOPIC_PREFIX": f"w{prefix}.",
        "TICKETING_OPERATOR_KUBECONFIG": str(kubeconfig),
    }
    started = local_pods(manifests, addresses, isolation=isolation)

    def run_to_completion(container: Manifest, what: str) -> None:
        env = container_env(manifests, container)
        result = subprocess.run(
            [sys.executable, *container["command"][1:]],
            env={k: addresses.localise(v, "ticketing") for k, v in env.items()},
            capture_output=True, text=True, timeout=180, check=False,
        )  # fmt: skip
        assert result.returncode == 0, f"{what} failed:\n{result.stderr[-3000:]}"

    (job,) = by_kind(manifests, "Job").values()
    (migrate,) = job["spec"]["template"]["spec"]["containers"]
    run_to_completion(migrate, "the migration Job")
    for name, deployment in by_kind(manifests, "Deployment").items():
        for init in deployment["spec"]["template"]["spec"].get("initContainers", []):
            run_to_completion(init, f"{name}'s init container {init['name']}")
    for pod in started.values():
        pod.start(sys.executable)
    try:
        yield started
    finally:
        for pod in started.values():
            pod.stop()


def http_services(manifests: list[Manifest]) -> list[str]:
    return sorted(
        d["metadata"]["labels"]["app.kubernetes.io/component"]
        for d in by_kind(manifests, "Deployment").values()
        if "readinessProbe" in d["spec"]["template"]["spec"]["containers"][0]
    )


def readiness(pod: LocalPod, deadline: float) -> tuple[int, dict[str, object]]:
    """The readiness answer once it is 200, or the last one when `deadline` passes."""
    while True:
        status, body = pod.get("/readyz")
        if status == 200 or time.monotonic() > deadline:
            return status, json.loads(body)
        time.sleep(0.5)


def test_every_http_component_goes_ready_from_its_rendered_environment(
    pods: dict[str, LocalPod], manifests: list[Manifest]
) -> None:
    deadline = time.monotonic() + 90
    answers = {name: readiness(pods[name], deadline) for name in http_services(manifests)}

    assert {name: status for name, (status, _) in answers.items()} == dict.fromkeys(answers, 200), {
        name: body for name, (status, body) in answers.items() if status != 200
    }


def test_each_component_is_wired_to_exactly_the_backends_its_readiness_checks(
    pods: dict[str, LocalPod], manifests: list[Manifest]
) -> None:
    deadline = time.monotonic() + 90
    wired, checked = {}, {}
    for name in http_services(manifests):
        _, body = readiness(pods[name], deadline)
        # Ready: every check it runs; not ready: at least the ones that failed.
        names = body.get("checked") or list(body.get("failed", {}))
        assert isinstance(names, list)
        checked[name] = sorted(set(BACKENDS) & set(names))
        wired[name] = sorted(b for b, variable in BACKENDS.items() if variable in pods[name].wired)

    assert wired == checked


def test_the_gateway_reaches_every_service_it_routes_to(pods: dict[str, LocalPod]) -> None:
    gateway = pods["gateway"]
    reached = {}
    for component in COMPONENTS:
        path = next(route.path for route in ROUTES if route.component == component)
        status, body = gateway.get(path.replace("*", "wired").rstrip("/") + "/wiring-check")
        # 502/504 are the gateway's own: the service behind it did not answer.
        reached[component] = status not in (502, 504) or body.decode()[:200]

    assert reached == dict.fromkeys(COMPONENTS, True)


def test_the_operator_puts_a_sale_into_the_event_and_seat_services(
    pods: dict[str, LocalPod], kube_api: client.ApiClient, namespace: str
) -> None:
    """Operator to event and seat services, seat service to event service, operator to Redis."""
    objects = client.CustomObjectsApi(kube_api)
    objects.create_namespaced_custom_object(
        "ticketing.dev", "v1alpha1", namespace, "ticketevents", SALE
    )
    deadline = time.monotonic() + SYNC_SECONDS
    services: dict[str, object] = {}
    while time.monotonic() < deadline:
        sale = objects.get_namespaced_custom_object(
            "ticketing.dev", "v1alpha1", namespace, "ticketevents", "wired"
        )
        services = sale.get("status", {}).get("services", {})
        if services.get("synced"):
            break
        time.sleep(1)

    assert services.get("synced") is True, services
    status, body = pods["seat"].get("/events/wired/seats")
    assert status == 200, body[:300]
