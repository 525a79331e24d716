"""Small factories for TicketEvents and the Redis state the services would write, and a poller."""

import asyncio
import time
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from typing import Any, TypeVar

from kubernetes import client
from ticketing_operator.spec import GROUP, PLURAL, VERSION, TicketEventSpec, parse_spec

T = TypeVar("T")


def make_ticketevent(
    name: str,
    *,
    opens_in: timedelta = timedelta(minutes=-5),
    lasts: timedelta = timedelta(hours=1),
    tps: float = 50,
    max_active: int = 500,
    rows: int = 4,
    seats_per_row: int = 5,
    **spec: Any,
) -> dict[str, Any]:
    """A TicketEvent; by default its sale opened five minutes ago and runs for an hour."""
    opens = datetime.now(UTC).replace(microsecond=0) + opens_in
    return {
        "apiVersion": f"{GROUP}/{VERSION}",
        "kind": "TicketEvent",
        "metadata": {"name": name},
        "spec": {
            "title": name.replace("-", " ").title(),
            "venue": {"rows": rows, "seatsPerRow": seats_per_row},
            "sale": {
                "opensAt": opens.isoformat().replace("+00:00", "Z"),
                "closesAt": (opens + lasts).isoformat().replace("+00:00", "Z"),
                "preQueueMinutes": 10,
            },
            "admission": {"tps": tps, "maxActive": max_active},
            **spec,
        },
    }


def create(objects: client.CustomObjectsApi, namespace: str, body: dict[str, Any]) -> None:
    objects.create_namespaced_custom_object(GROUP, VERSION, namespace, PLURAL, body)


def read(objects: client.CustomObjectsApi, namespace: str, name: str) -> dict[str, Any]:
    found: dict[str, Any] = objects.get_namespaced_custom_object(
        GROUP, VERSION, namespace, PLURAL, name
    )
    return found


def patch_spec(
    objects: client.CustomObjectsApi, namespace: str, name: str, spec: dict[str, Any]
) -> None:
    objects.patch_namespaced_custom_object(GROUP, VERSION, namespace, PLURAL, name, {"spec": spec})


def condition(resource: dict[str, Any], kind: str) -> dict[str, Any]:
    conditions = resource.get("status", {}).get("conditions", [])
    return next((c for c in conditions if c["type"] == kind), {})


def make_deployment(name: str, replicas: int) -> client.V1Deployment:
    labels = {"app.kubernetes.io/name": name}
    return client.V1Deployment(
        metadata=client.V1ObjectMeta(name=name),
        spec=client.V1DeploymentSpec(
            replicas=replicas,
            selector=client.V1LabelSelector(match_labels=labels),
            template=client.V1PodTemplateSpec(
                metadata=client.V1ObjectMeta(labels=labels),
                spec=client.V1PodSpec(
                    containers=[client.V1Container(name="worker", image="ticketing:dev")]
                ),
            ),
        ),
    )


async def eventually(
    probe: Callable[[], Awaitable[T]],
    accept: Callable[[T], bool],
    *,
    within: float = 20,
    what: str = "the expected state",
) -> T:
    """Poll `probe` until `accept` holds; fail with the last value seen after `within`."""
    deadline = time.monotonic() + within
    while True:
        value = await probe()
        if accept(value):
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"{what} not reached within {within}s; last seen: {value!r}")
        await asyncio.sleep(0.25)


def make_spec(**overrides: Any) -> TicketEventSpec:
    """A spec as the API server hands it over: every default filled in."""
    opens = datetime(2027, 4, 1, 12, tzinfo=UTC)
    spec: dict[str, Any] = {
        "title": "Spring Concert",
        "venue": {"rows": 4, "seatsPerRow": 5, "priceCents": 4500, "currency": "EUR"},
        "sale": {
            "opensAt": opens.isoformat(),
            "closesAt": (opens + timedelta(hours=2)).isoformat(),
            "preQueueMinutes": 30,
        },
        "admission": {
            "tps": 100,
            "maxActive": 1000,
            "sessionTTLSeconds": 300,
            "adaptive": {"enabled": False},
        },
        "holds": {"ttlSeconds": 300},
        "retryWorkers": {
            "minReplicas": 1,
            "maxReplicas": 8,
            "backlogPerReplica": 500,
            "cooldownSeconds": 60,
        },
        "controls": {"paused": False, "maintenance": False, "message": ""},
    }
    for section, values in overrides.items():
        spec[section] = {**spec[section], **values} if isinstance(values, dict) else values
    return parse_spec(spec)
