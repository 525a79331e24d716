"""Fixtures of the hardening tests: the services' fixtures from tests/core, and for the fault
tests a stack of their own, which they stop and restart without disturbing the session's: one
with a single Kafka broker, and one with a three-node Kafka cluster (ticketing_dev.kafka_trio)."""

import asyncio
import contextlib
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
import redis.asyncio as aioredis
from redis.asyncio.retry import Retry
from redis.backoff import ExponentialBackoff
from redis.exceptions import ConnectionError as RedisConnectionError
from sqlalchemy import text
from ticketing.common.db import make_engine, server_url
from ticketing.common.resources import open_database
from ticketing.common.settings import CommonSettings
from ticketing.migrations.run import upgrade
from ticketing_dev.kafka_trio import KafkaTrio
from ticketing_dev.ports import free_port
from ticketing_dev.servers import KafkaServer
from ticketing_dev.stack import LocalStack, StackPorts

from tests.core.conftest import migrated_database, serve
from tests.hardening.platform import FaultPlatform, service_env
from tests.service_processes import ServiceProcess

__all__ = [
    "fault_platform",
    "fault_stack",
    "migrated_database",
    "serve",
    "trio_platform",
    "trio_stack",
]

# In FaultPlatform's order: what the chart deploys for a sale's reservations and payments.
PROCESSES = ("reservation", "payment", "retry-consumer", "retry-worker")


def _own_stack(directory: Path, kafka_brokers: int) -> Iterator[LocalStack]:
    # Free ports always: TICKETING_*_PORT, if set, belongs to the session's stack.
    ports = StackPorts(free_port(), free_port(), free_port(), free_port())
    local = LocalStack(directory, ports, kafka_brokers)
    local.start()
    try:
        yield local
    finally:
        local.stop()


@pytest.fixture(scope="session")
def fault_stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalStack]:
    yield from _own_stack(tmp_path_factory.mktemp("fault-stack"), kafka_brokers=1)


@pytest.fixture(scope="module")
def trio_stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalStack]:
    """Redis, MariaDB and a three-node Kafka cluster, for the tests that take its nodes down;
    stopped after their module, so its three JVMs do not idle through the rest of the suite."""
    yield from _own_stack(tmp_path_factory.mktemp("trio-stack"), kafka_brokers=3)


def _restore(stack: LocalStack) -> None:
    """Bring back any server a failed fault test left stopped, for the tests after it."""
    kafka_nodes: list[KafkaServer] = (
        stack.kafka.nodes if isinstance(stack.kafka, KafkaTrio) else [stack.kafka]
    )
    for server in (*kafka_nodes, stack.mariadb, stack.redis):
        if not server.process.running():
            server.start()
            server.wait_ready()


@pytest.fixture
async def fault_platform(
    fault_stack: LocalStack, test_id: str, tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[FaultPlatform]:
    """A fresh database and namespaces on the fault stack, with the reservation and payment
    services and the retry ladder's consumer and worker running as processes and ready."""
    async with _platform_on(fault_stack, test_id, tmp_path_factory) as platform:
        yield platform


@pytest.fixture
async def trio_platform(
    trio_stack: LocalStack, test_id: str, tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[FaultPlatform]:
    """The same platform on the three-node Kafka cluster, its topics three copies, two in sync."""
    async with _platform_on(trio_stack, test_id, tmp_path_factory) as platform:
        yield platform


@contextlib.asynccontextmanager
async def _platform_on(
    stack: LocalStack, test_id: str, tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[FaultPlatform]:
    database = f"h_{test_id}"
    settings = CommonSettings(
        redis_url=stack.redis.url,
        database_url=f"{stack.mariadb.url}/{database}",
        kafka_bootstrap=stack.kafka.bootstrap,
        redis_key_prefix=f"h{test_id}",
        kafka_topic_prefix=f"h{test_id}.",
    )
    admin = make_engine(server_url(settings.database_url), pool_size=1)
    async with admin.begin() as conn:
        await conn.execute(text(f"CREATE DATABASE {database}"))
    await asyncio.to_thread(upgrade, settings.database_url)
    logs = tmp_path_factory.mktemp(f"services-{test_id}")
    env = {**service_env(settings), **stack.kafka.topic_env()}
    services = [ServiceProcess(name, env, logs) for name in PROCESSES]
    # Retried: its connections do not survive a Redis restart in the test.
    redis = aioredis.Redis.from_url(
        settings.redis_url,
        retry=Retry(ExponentialBackoff(cap=1.0, base=0.1), retries=10),
        retry_on_error=[RedisConnectionError],
    )
    try:
        for service in services:
            service.start()
        for service in services:
            await asyncio.to_thread(service.wait_ready)
        async with open_database(settings.database_url) as engine:
            yield FaultPlatform(stack, settings, engine, redis, *services)
    finally:
        for service in services:
            service.process.stop()
        await redis.aclose()
        await asyncio.to_thread(_restore, stack)
        async with admin.begin() as conn:
            await conn.execute(text(f"DROP DATABASE IF EXISTS {database}"))
        await admin.dispose()
