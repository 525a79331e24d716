"""The operator against a real kube-apiserver and a real Redis: a TicketEvent becomes a running
sale's configuration, follows its spec, scales retry workers, and cleans up after itself."""

import asyncio
import json
from typing import Any

import pytest
import redis.asyncio as aioredis
from kubernetes import client
from ticketing.common.redis_keys import RetryKeys, SaleKeys
from ticketing.common.sale_config import Phase, SaleConfig, read_sale_config
from ticketing_dev.controlplane import ControlPlane
from ticketing_operator.handlers import TICK_SECONDS
from ticketing_operator.settings import OperatorSettings

from tests.operator.conftest import MANIFESTS, StartOperator
from tests.operator.factories import (
    condition,
    create,
    eventually,
    make_deployment,
    make_ticketevent,
    patch_spec,
    read,
)

pytestmark = [pytest.mark.kube, pytest.mark.slow]


def config_probe(redis_client: aioredis.Redis, prefix: str, event_id: str) -> Any:
    async def probe() -> SaleConfig | None:
        return await read_sale_config(redis_client, prefix, event_id)

    return probe


def resource_probe(objects: client.CustomObjectsApi, namespace: str, name: str) -> Any:
    async def probe() -> dict[str, Any]:
        return read(objects, namespace, name)

    return probe


async def test_applying_sample_writes_config_ready_condition_and_printer_columns(
    start_operator: StartOperator,
    kube_control_plane: ControlPlane,
    kube_namespace: str,
    objects: client.CustomObjectsApi,
    redis_client: aioredis.Redis,
    operator_settings: OperatorSettings,
) -> None:
    prefix = operator_settings.redis_key_prefix
    seats = SaleKeys(prefix, "spring-concert").seats
    await redis_client.hset(
        seats, mapping={"r1-s1": "sold:r9", "r1-s2": "held:r8", "r1-s3": "free"}
    )
    start_operator()

    kube_control_plane.kubectl(
        "apply", "-n", kube_namespace, "-f", str(MANIFESTS / "samples" / "spring-concert.yaml")
    )

    config = await eventually(
        config_probe(redis_client, prefix, "spring-concert"),
        lambda c: c is not None,
        what="the sale's configuration in Redis",
    )
    assert config is not None
    assert (config.tps, config.max_active, config.session_ttl_seconds) == (200, 2000, 300)
    assert (config.hold_ttl_seconds, config.pre_queue_minutes) == (300, 30)
    assert config.max_seats_per_buyer == 2
    assert config.phase is Phase.SCHEDULED
    resource = await eventually(
        resource_probe(objects, kube_namespace, "spring-concert"),
        lambda r: condition(r, "Ready").get("status") == "True",
        what="Ready=True",
    )
    assert condition(resource, "ServicesSynced")["reason"] == "NotConfigured"
    table = kube_control_plane.kubectl("get", "ticketevents", "-n", kube_namespace)
    header, row = table.splitlines()
    assert header.split() == ["NAME", "PHASE", "TPS", "WAITING", "SOLD", "REMAINING", "AGE"]
    assert row.split()[:6] == ["spring-concert", "Scheduled", "200", "0", "1", "2"]


async def test_changing_tps_reaches_redis_and_status_within_seconds(
    start_operator: StartOperator,
    kube_namespace: str,
    objects: client.CustomObjectsApi,
    redis_client: aioredis.Redis,
    operator_settings: OperatorSettings,
) -> None:
    prefix = operator_settings.redis_key_prefix
    start_operator()
    create(objects, kube_namespace, make_ticketevent("rock-night", tps=50))
    await eventually(
        config_probe(redis_client, prefix, "rock-night"),
        lambda c: c is not None and c.tps == 50,
        what="tps 50 in Redis",
    )

    patch_spec(objects, kube_namespace, "rock-night", {"admission": {"tps": 120}})

    config = await eventually(
        config_probe(redis_client, prefix, "rock-night"),
        lambda c: c is not None and c.tps == 120,
        what="tps 120 in Redis",
    )
    assert config is not None and config.phase is Phase.ON_SALE
    resource = await eventually(
        resource_probe(objects, kube_namespace, "rock-night"),
        lambda r: r["status"].get("observedGeneration") == r["metadata"]["generation"],
        what="observedGeneration == generation",
    )
    assert resource["metadata"]["generation"] == 2
    assert resource["status"]["admission"]["tps"] == 120


async def test_controls_pause_and_message_reach_the_runtime_config(
    start_operator: StartOperator,
    kube_namespace: str,
    objects: client.CustomObjectsApi,
    redis_client: aioredis.Redis,
    operator_settings: OperatorSettings,
) -> None:
    start_operator()
    create(objects, kube_namespace, make_ticketevent("jazz-brunch"))

    patch_spec(
        objects,
        kube_namespace,
        "jazz-brunch",
        {"controls": {"paused": True, "maintenance": True, "message": "back at noon"}},
    )

    config = await eventually(
        config_probe(redis_client, operator_settings.redis_key_prefix, "jazz-brunch"),
        lambda c: c is not None and c.paused,
        what="a paused sale",
    )
    assert config is not None
    assert (config.maintenance, config.message) == (True, "back at noon")


async def test_retry_backlog_scales_workers_to_max_then_back_to_min_after_cooldown(
    start_operator: StartOperator,
    kube_api: client.ApiClient,
    kube_namespace: str,
    objects: client.CustomObjectsApi,
    redis_client: aioredis.Redis,
    operator_settings: OperatorSettings,
) -> None:
    apps = client.AppsV1Api(kube_api)
    apps.create_namespaced_deployment(kube_namespace, make_deployment("retry-worker", replicas=1))
    start_operator()
    policy = {
        "deployment": "retry-worker",
        "minReplicas": 1,
        "maxReplicas": 4,
        "backlogPerReplica": 10,
        "cooldownSeconds": 4,
    }
    create(objects, kube_namespace, make_ticketevent("big-show", retryWorkers=policy))
    retry = RetryKeys(operator_settings.redis_key_prefix)
    topic = "reservation.requested"
    await redis_client.sadd(retry.topics, topic)

    async def replicas() -> int:
        return int(
            apps.read_namespaced_deployment_scale("retry-worker", kube_namespace).spec.replicas
        )

    await redis_client.zadd(retry.delayed(topic), {f"m{i}": i for i in range(25)})
    assert await eventually(replicas, lambda r: r == 3, what="3 replicas for 25 messages") == 3
    await redis_client.zadd(retry.delayed(topic), {f"n{i}": i for i in range(100)})
    assert await eventually(replicas, lambda r: r == 4, what="max replicas") == 4

    await redis_client.delete(retry.delayed(topic))
    resource = await eventually(
        resource_probe(objects, kube_namespace, "big-show"),
        lambda r: r["status"]["retryWorkers"].get("lowSince") is not None,
        what="the cool-down to start",
    )
    assert await replicas() == 4  # the backlog is gone, but the cool-down has not passed
    assert resource["status"]["retryWorkers"]["reason"].startswith("cooling down")
    assert await eventually(replicas, lambda r: r == 1, within=15, what="min replicas") == 1
    resource = read(objects, kube_namespace, "big-show")
    assert resource["status"]["retryWorkers"]["backlog"] == 0
    assert resource["status"]["retryWorkers"]["reason"].startswith("scaled down")

    async def scaled() -> list[str]:
        events = client.CoreV1Api(kube_api).list_namespaced_event(kube_namespace).items
        return [e.message for e in events if e.reason == "RetryWorkersScaled"]

    messages = await eventually(
        scaled, lambda m: len(m) == 3, what="an event for each of the three scalings"
    )
    assert sorted(m.split(":")[0] for m in messages) == ["1 -> 3", "3 -> 4", "4 -> 1"]


async def test_sale_without_retry_deployment_reports_degraded(
    start_operator: StartOperator,
    kube_namespace: str,
    objects: client.CustomObjectsApi,
) -> None:
    start_operator()

    create(objects, kube_namespace, make_ticketevent("no-workers"))

    resource = await eventually(
        resource_probe(objects, kube_namespace, "no-workers"),
        # Until the services step has run once, Degraded says "Pending"; wait for the verdict.
        lambda r: condition(r, "Degraded").get("reason") == "RetryWorkersNotFound",
        what="Degraded because the retry workers are missing",
    )
    assert condition(resource, "Degraded")["status"] == "True"
    assert condition(resource, "Ready")["status"] == "True"


async def test_sold_out_sale_moves_phase_and_posts_an_event(
    start_operator: StartOperator,
    kube_api: client.ApiClient,
    kube_namespace: str,
    objects: client.CustomObjectsApi,
    redis_client: aioredis.Redis,
    operator_settings: OperatorSettings,
) -> None:
    prefix = operator_settings.redis_key_prefix
    seats = SaleKeys(prefix, "tiny-club").seats
    await redis_client.hset(seats, mapping={"r1-s1": "free", "r1-s2": "sold:a"})
    start_operator()
    create(objects, kube_namespace, make_ticketevent("tiny-club", rows=1, seats_per_row=2))
    await eventually(
        resource_probe(objects, kube_namespace, "tiny-club"),
        lambda r: r.get("status", {}).get("phase") == "OnSale",
        what="OnSale",
    )

    await redis_client.hset(seats, "r1-s1", "sold:b")

    config = await eventually(
        config_probe(redis_client, prefix, "tiny-club"),
        lambda c: c is not None and c.phase is Phase.SOLD_OUT,
        what="SoldOut in Redis",
    )
    assert config is not None
    resource = read(objects, kube_namespace, "tiny-club")
    assert resource["status"]["seats"] == {
        "total": 2,
        "free": 0,
        "held": 0,
        "sold": 2,
        "remaining": 0,
    }
    assert condition(resource, "Progressing")["status"] == "False"
    core = client.CoreV1Api(kube_api)

    async def messages() -> list[str]:
        events = core.list_namespaced_event(kube_namespace).items
        return [e.message for e in events if e.reason == "PhaseChanged"]

    seen = await eventually(
        messages, lambda m: "OnSale -> SoldOut" in m, what="a PhaseChanged event"
    )
    assert "New -> OnSale" in seen


@pytest.mark.parametrize(
    ("spec", "field", "words"),
    [
        ({"admission": {"tps": 0, "maxActive": 10}}, "spec.admission.tps", "greater than 0"),
        (
            {"admission": {"tps": 100, "maxActive": 10}},
            "spec.admission.maxActive",
            "must be at least spec.admission.tps",
        ),
        (
            {"admission": {"tps": 10, "maxActive": 1000, "sessionTTLSeconds": 119}},
            "spec.admission.sessionTTLSeconds",
            "must be at least maxActive / tps (minTps when adaptive) + 20",
        ),
        (
            {
                "admission": {
                    "tps": 100,
                    "maxActive": 1000,
                    "sessionTTLSeconds": 60,
                    "adaptive": {"enabled": True, "minTps": 20, "maxTps": 200},
                }
            },
            "spec.admission.sessionTTLSeconds",
            "must be at least maxActive / tps (minTps when adaptive) + 20",
        ),
        (
            {
                "sale": {
                    "opensAt": "2027-01-01T12:00:00Z",
                    "closesAt": "2027-01-01T11:00:00Z",
                }
            },
            "spec.sale.closesAt",
            "must be after spec.sale.opensAt",
        ),
        (
            {"venue": {"rows": 0, "seatsPerRow": 10}},
            "spec.venue.rows",
            "greater than or equal to 1",
        ),
        (
            {"venue": {"rows": 10, "seatsPerRow": 0}},
            "spec.venue.seatsPerRow",
            "greater than or equal to 1",
        ),
        (
            {"holds": {"maxSeatsPerBuyer": 5}},
            "spec.holds.maxSeatsPerBuyer",
            "must not exceed 4, the seats one hold takes",
        ),
        (
            {"venue": {"rows": 1, "seatsPerRow": 2}, "holds": {"maxSeatsPerBuyer": 3}},
            "spec.holds.maxSeatsPerBuyer",
            "must not exceed the venue's seats",
        ),
    ],
    ids=[
        "tps-zero",
        "cap-below-tps",
        "token-expires-before-a-full-cap-is-served",
        "token-expires-before-a-full-cap-is-served-at-min-tps",
        "closes-before-opens",
        "no-rows",
        "no-seats-per-row",
        "limit-above-a-hold",
        "limit-above-the-stock",
    ],
)
def test_invalid_ticketevent_is_refused_naming_the_field(
    kube_namespace: str,
    objects: client.CustomObjectsApi,
    ticketevent_crd: str,
    spec: dict[str, Any],
    field: str,
    words: str,
) -> None:
    body = make_ticketevent("nonsense")
    body["spec"].update(spec)

    with pytest.raises(client.ApiException) as refused:
        create(objects, kube_namespace, body)

    assert refused.value.status == 422
    message = json.loads(refused.value.body)["message"]
    assert f"{field}: Invalid value" in message
    assert words in message


async def test_deleting_ticketevent_closes_the_sale_then_removes_its_config(
    start_operator: StartOperator,
    kube_namespace: str,
    objects: client.CustomObjectsApi,
    redis_client: aioredis.Redis,
    operator_settings: OperatorSettings,
) -> None:
    prefix = operator_settings.redis_key_prefix
    start_operator()
    create(objects, kube_namespace, make_ticketevent("last-dance"))
    await eventually(
        config_probe(redis_client, prefix, "last-dance"),
        lambda c: c is not None,
        what="the sale's configuration",
    )

    objects.delete_namespaced_custom_object(
        "ticketing.dev", "v1alpha1", kube_namespace, "ticketevents", "last-dance"
    )

    closed = await eventually(
        config_probe(redis_client, prefix, "last-dance"),
        lambda c: c is None or c.phase is Phase.CLOSED,
        what="the sale closed",
    )
    assert closed is not None and closed.message == "This sale has closed."
    await eventually(
        config_probe(redis_client, prefix, "last-dance"),
        lambda c: c is None,
        what="the configuration removed",
    )

    async def gone() -> bool:
        listed = objects.list_namespaced_custom_object(
            "ticketing.dev", "v1alpha1", kube_namespace, "ticketevents"
        )
        return not listed["items"]

    await eventually(gone, bool, what="the resource gone (finalizer released)")


async def test_restarting_operator_mid_sale_changes_nothing(
    start_operator: StartOperator,
    kube_api: client.ApiClient,
    kube_namespace: str,
    objects: client.CustomObjectsApi,
    redis_client: aioredis.Redis,
    operator_settings: OperatorSettings,
) -> None:
    prefix = operator_settings.redis_key_prefix
    apps = client.AppsV1Api(kube_api)
    apps.create_namespaced_deployment(
        kube_namespace, make_deployment("ticketing-retry-worker", replicas=1)
    )
    retry = RetryKeys(prefix)
    await redis_client.sadd(retry.topics, "reservation.paid")
    await redis_client.zadd(retry.delayed("reservation.paid"), {f"m{i}": i for i in range(1200)})
    body = make_ticketevent(
        "encore",
        admission={
            "tps": 80,
            "maxActive": 400,
            "adaptive": {"enabled": True, "minTps": 20, "maxTps": 200},
        },
    )
    first = start_operator()
    create(objects, kube_namespace, body)
    before = await eventually(
        resource_probe(objects, kube_namespace, "encore"),
        lambda r: (
            condition(r, "Ready").get("status") == "True"
            and r["status"]["retryWorkers"]["reason"] == "steady: backlog 1200 wants 3 worker(s)"
        ),
        what="a settled sale",
    )
    config_before = await read_sale_config(redis_client, prefix, "encore")

    first.stop()
    start_operator()
    await asyncio.sleep(3 * TICK_SECONDS)  # the new operator resumes and ticks a few times

    after = read(objects, kube_namespace, "encore")
    assert await read_sale_config(redis_client, prefix, "encore") == config_before
    assert after["status"] == before["status"]
    assert after["metadata"]["generation"] == before["metadata"]["generation"]
    scale = apps.read_namespaced_deployment_scale("ticketing-retry-worker", kube_namespace)
    assert scale.spec.replicas == 3
    events = client.CoreV1Api(kube_api).list_namespaced_event(kube_namespace).items
    assert [e.message for e in events if e.reason == "PhaseChanged"] == ["New -> OnSale"]
    patch_spec(objects, kube_namespace, "encore", {"admission": {"tps": 90}})
    await eventually(
        config_probe(redis_client, prefix, "encore"),
        lambda c: c is not None and c.tps == 90,
        what="the restarted operator to follow a change",
    )
