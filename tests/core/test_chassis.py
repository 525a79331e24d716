"""The service chassis every service is built on: probes, metrics, request ids, JSON logs, errors."""

import asyncio
import contextlib
import json
import os
import signal
import sys
import time
from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager

import httpx
from fastapi import APIRouter, FastAPI
from prometheus_client.parser import text_string_to_metric_families
from ticketing.common.cpu import start_accounting
from ticketing.common.http import ReadinessCheck, create_app
from ticketing.common.producer import RenewingProducer
from ticketing.common.redis_client import REDIS_POOL_SIZE
from ticketing.common.resources import (
    database_ready,
    kafka_ready,
    open_database,
    open_redis,
    redis_ready,
)
from ticketing.common.settings import CommonSettings
from ticketing.migrations.schema import owners
from ticketing_dev.ports import free_port
from ticketing_dev.stack import LocalStack

from tests.core.conftest import Serve
from tests.service_processes import STARTUP_SECONDS

broken = APIRouter()


@broken.get("/boom")
async def boom() -> None:
    raise RuntimeError("secret internals /etc/passwd")


def _app(settings: CommonSettings, with_kafka: bool = False) -> FastAPI:
    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[Mapping[str, ReadinessCheck]]:
        async with (
            open_redis(settings) as redis,
            open_database(settings.database_url) as engine,
        ):
            checks = {"redis": redis_ready(redis), "database": database_ready(engine, owners())}
            if not with_kafka:
                yield checks
                return
            producer = RenewingProducer(settings.kafka_bootstrap, "chassis-test")
            await producer.start()
            try:
                yield {**checks, "kafka": kafka_ready(producer)}
            finally:
                await producer.stop()

    return create_app(service="probe", settings=settings, lifespan=lifespan, routers=[broken])


async def test_readyz_is_ready_when_every_real_dependency_answers(
    settings: CommonSettings, migrated_database: str, serve: Serve
) -> None:
    client = await serve(_app(settings, with_kafka=True))
    response = await client.get("/readyz")
    assert response.status_code == 200
    assert sorted(response.json()["checked"]) == ["database", "kafka", "redis"]


async def test_readyz_names_the_dependency_that_is_unreachable(
    settings: CommonSettings, migrated_database: str, serve: Serve
) -> None:
    closed = settings.model_copy(update={"redis_url": f"redis://127.0.0.1:{free_port()}/0"})
    client = await serve(_app(closed))
    assert (await client.get("/healthz")).status_code == 200
    response = await client.get("/readyz")
    assert response.status_code == 503
    assert list(response.json()["failed"]) == ["redis"]


async def test_unhandled_error_is_a_generic_500_with_the_request_id(
    settings: CommonSettings, migrated_database: str, serve: Serve
) -> None:
    client = await serve(_app(settings))
    response = await client.get("/boom", headers={"X-Request-ID": "req-boom-1"})
    assert response.status_code == 500
    assert response.json() == {"detail": "internal error", "request_id": "req-boom-1"}
    assert "internals" not in response.text
    assert response.headers["X-Request-ID"] == "req-boom-1"


async def test_response_carries_a_generated_request_id_when_none_was_sent(
    settings: CommonSettings, migrated_database: str, serve: Serve
) -> None:
    client = await serve(_app(settings))
    first, second = await client.get("/healthz"), await client.get("/healthz")
    assert len(first.headers["X-Request-ID"]) == 32
    assert first.headers["X-Request-ID"] != second.headers["X-Request-ID"]


async def test_metrics_count_requests_per_route_template(
    settings: CommonSettings, migrated_database: str, serve: Serve
) -> None:
    client = await serve(_app(settings))
    await client.get("/boom")
    text = (await client.get("/metrics")).text
    assert (
        'ticketing_http_requests_total{method="GET",route="/boom",service="probe",status="500"}'
        in text
    )
    assert "ticketing_http_request_duration_seconds_bucket" in text


async def _wait_healthy(client: httpx.AsyncClient, process: asyncio.subprocess.Process) -> None:
    deadline = time.monotonic() + STARTUP_SECONDS
    while time.monotonic() < deadline:
        assert process.returncode is None, "the service exited while starting"
        with contextlib.suppress(httpx.TransportError):
            if (await client.get("/healthz")).status_code == 200:
                return
        await asyncio.sleep(0.1)
    raise AssertionError(f"the service never answered /healthz within {STARTUP_SECONDS:g}s")


async def test_entry_point_serves_and_logs_json_lines_with_the_request_id(
    stack: LocalStack, migrated_database: str
) -> None:
    port = free_port()
    env = {
        **os.environ,
        **stack.env(),
        "TICKETING_DATABASE_URL": migrated_database,
        "TICKETING_HTTP_PORT": str(port),
    }
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "ticketing",
        "user",
        env=env,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )
    try:
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}") as client:
            await _wait_healthy(client, process)
            me = await client.get("/users/me", headers={"X-Request-ID": "entry-42"})
            assert (await client.get("/readyz")).status_code == 200
        assert me.status_code == 401
    finally:
        process.send_signal(signal.SIGTERM)
        output, _ = await asyncio.wait_for(process.communicate(), 20)
    lines = [json.loads(line) for line in output.decode().splitlines() if line.strip()]
    access = [line for line in lines if line.get("request_id") == "entry-42"]
    assert access, output
    assert access[0]["status"] == 401
    assert access[0]["service"] == "user"


def _cpu_parts(metrics: str) -> dict[str, float]:
    return {
        sample.labels["part"]: sample.value
        for family in text_string_to_metric_families(metrics)
        for sample in family.samples
        if sample.name == "ticketing_cpu_seconds_total"
    }


async def test_cpu_accounting_charges_each_route_its_own_cpu_seconds(
    stack: LocalStack, migrated_database: str
) -> None:
    port = free_port()
    env = {
        **os.environ,
        **stack.env(),
        "TICKETING_DATABASE_URL": migrated_database,
        "TICKETING_CPU_ACCOUNTING": "true",
    }
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "ticketing", "user", "--port", str(port), env=env,
        stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.DEVNULL,
    )  # fmt: skip
    try:
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}") as client:
            await _wait_healthy(client, process)
            before = _cpu_parts((await client.get("/metrics")).text)
            for _ in range(200):
                assert (await client.get("/readyz")).status_code == 200
            await client.get("/users/me")
            after = _cpu_parts((await client.get("/metrics")).text)
    finally:
        process.send_signal(signal.SIGTERM)
        await asyncio.wait_for(process.wait(), 20)
    ready = after["GET /readyz"] - before.get("GET /readyz", 0.0)
    # 200 readiness checks, each a Redis PING and a SELECT 1: well over a millisecond of CPU,
    # and far more than the one refused /users/me.
    assert ready > 0.001
    assert ready > after["GET /users/me"]
    # A request is charged to its route once answered, even one that served the figures.
    assert after["GET /metrics"] > 0


async def test_a_burst_beyond_the_redis_pool_waits_for_connections_instead_of_failing(
    settings: CommonSettings,
) -> None:
    burst = REDIS_POOL_SIZE + 50
    async with open_redis(settings) as client:
        # Each BLPOP holds its connection for 0.2 s, so the last 50 must wait for one.
        results = await asyncio.gather(
            *(client.blpop([f"chassis-burst-{i}"], timeout=0.2) for i in range(burst))
        )
    assert results == [None] * burst


def test_cpu_accounting_lets_asyncio_run_wind_down() -> None:
    async def pages() -> AsyncIterator[int]:
        yield 1
        yield 2

    async def main() -> None:
        start_accounting()
        # Left open: asyncio.run closes it in a task made once the main task has finished.
        await anext(pages())

    asyncio.run(main())
