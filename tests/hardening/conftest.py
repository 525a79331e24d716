"""Fixtures of the hardening tests: the services' fixtures from tests/core, and for the fault
tests a stack of their own, which they stop and restart without disturbing the session's: one
with a single Kafka broker, one with a three-node Kafka cluster (ticketing_dev.kafka_trio), and
a Redis Cluster of its own for the test that kills its primary."""

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
from sqlalchemy.engine import make_url
from ticketing.common.db import make_engine, server_url
from ticketing.common.redis_client import RedisClient, connect_redis
from ticketing.common.resources import open_database
from ticketing.common.settings import CommonSettings
from ticketing.migrations.run import upgrade
from ticketing_dev.kafka_trio import KafkaTrio
from ticketing_dev.ports import free_port
from ticketing_dev.redis_cluster import ClusterPorts, RedisClusterServers
from ticketing_dev.servers import KafkaServer
from ticketing_dev.stack import LocalStack, StackPorts

from tests.core.conftest import migrated_database, serve
from tests.hardening.platform import FaultPlatform, service_env
from tests.service_processes import ServiceProcess

__all__ = [
    "cluster_fault_platform",
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


def _settings(stack: LocalStack, test_id: str) -> CommonSettings:
    return CommonSettings(
        redis_url=stack.redis.url,
        database_url=f"{stack.mariadb.url}/h_{test_id}",
        kafka_bootstrap=stack.kafka.bootstrap,
        redis_key_prefix=f"h{test_id}",
        kafka_topic_prefix=f"h{test_id}.",
    )


def _test_client(settings: CommonSettings) -> RedisClient:
    """The test's own client. A single server's is retried: its connections do not survive a
    Redis restart in the test; a cluster client follows failovers by itself."""
    if settings.redis_cluster:
        return connect_redis(settings)
    return aioredis.Redis.from_url(
        settings.redis_url,
        retry=Retry(ExponentialBackoff(cap=1.0, base=0.1), retries=10),
        retry_on_error=[RedisConnectionError],
    )


@contextlib.asynccontextmanager
async def _platform(
    stack: LocalStack,
    settings: CommonSettings,
    logs: Path,
    redis_cluster: RedisClusterServers | None = None,
) -> AsyncIterator[FaultPlatform]:
    """A fresh database and namespaces on `stack`, with the reservation and payment services
    and the retry ladder's consumer and worker running as processes and ready."""
    database = make_url(settings.database_url).database
    admin = make_engine(server_url(settings.database_url), pool_size=1)
    async with admin.begin() as conn:
        await conn.execute(text(f"CREATE DATABASE {database}"))
    await asyncio.to_thread(upgrade, settings.database_url)
    env = {**service_env(settings), **stack.kafka.topic_env()}
    services = [ServiceProcess(name, env, logs) for name in PROCESSES]
    redis = _test_client(settings)
    try:
        for service in services:
            service.start()
        for service in services:
            await asyncio.to_thread(service.wait_ready)
        async with open_database(settings.database_url) as engine:
            yield FaultPlatform(stack, settings, engine, redis, *services, redis_cluster)
    finally:
        for service in services:
            service.process.stop()
        await redis.aclose()
        await asyncio.to_thread(_restore, stack)
        async with admin.begin() as conn:
            await conn.execute(text(f"DROP DATABASE IF EXISTS {database}"))
        await admin.dispose()


@pytest.fixture
async def fault_platform(
    fault_stack: LocalStack, test_id: str, tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[FaultPlatform]:
    logs = tmp_path_factory.mktemp(f"services-{test_id}")
    async with _platform(fault_stack, _settings(fault_stack, test_id), logs) as platform:
        yield platform


@pytest.fixture
async def trio_platform(
    trio_stack: LocalStack, test_id: str, tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[FaultPlatform]:
    """The same platform on the three-node Kafka cluster, its topics three copies, two in sync."""
    logs = tmp_path_factory.mktemp(f"services-{test_id}")
    async with _platform(trio_stack, _settings(trio_stack, test_id), logs) as platform:
        yield platform


@pytest.fixture
async def cluster_fault_platform(
    fault_stack: LocalStack, test_id: str, tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[FaultPlatform]:
    """The fault platform on a Redis Cluster of its own (a test may kill its nodes), with
    MariaDB and Kafka from the fault stack."""
    cluster = RedisClusterServers(tmp_path_factory.mktemp("fault-cluster"), ClusterPorts.free())
    await asyncio.to_thread(cluster.start)
    settings = _settings(fault_stack, test_id).model_copy(
        update={"redis_url": cluster.url, "redis_cluster": True}
    )
    try:
        logs = tmp_path_factory.mktemp(f"services-{test_id}")
        async with _platform(fault_stack, settings, logs, cluster) as platform:
            yield platform
    finally:
        await asyncio.to_thread(cluster.stop)
