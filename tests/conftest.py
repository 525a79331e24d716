"""Real servers for the whole test session, and per-test isolation on top of them.

The session starts Redis, MariaDB and Kafka from their real binaries on free loopback ports
(ticketing_dev), and a Redis Cluster (three primaries, a replica each) for the tests that ask
for it. Each test gets its own Redis key prefix, its own database and its own
Kafka topic prefix and consumer groups, so tests never see each other's data.
"""

import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
import redis.asyncio as aioredis
from sqlalchemy import text
from sqlalchemy.ext.asyncio import create_async_engine
from ticketing.common.db import server_url
from ticketing.common.settings import CommonSettings
from ticketing_dev.redis_cluster import ClusterPorts, RedisClusterServers
from ticketing_dev.stack import LocalStack, StackPorts

pytest_plugins: list[str] = ["tests.prerequisites", "tests.kube.fixtures"]


@pytest.fixture(scope="session")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalStack]:
    ports = StackPorts.from_env()
    local = LocalStack(Path(tmp_path_factory.mktemp("stack")), ports)
    local.start()
    try:
        yield local
    finally:
        local.stop()


@pytest.fixture(scope="session")
def redis_cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RedisClusterServers]:
    """Six redis-server processes joined into one cluster, started once for the session."""
    cluster = RedisClusterServers(
        Path(tmp_path_factory.mktemp("redis-cluster")), ClusterPorts.free()
    )
    cluster.start()
    try:
        yield cluster
    finally:
        cluster.stop()


@pytest.fixture
def test_id() -> str:
    return uuid.uuid4().hex[:10]


@pytest.fixture
async def database_url(stack: LocalStack, test_id: str) -> AsyncIterator[str]:
    """A fresh, empty database for this test, dropped afterwards."""
    url = f"{stack.mariadb.url}/t_{test_id}"
    engine = create_async_engine(server_url(url))
    async with engine.begin() as conn:
        await conn.execute(text(f"CREATE DATABASE t_{test_id}"))
    try:
        yield url
    finally:
        async with engine.begin() as conn:
            await conn.execute(text(f"DROP DATABASE IF EXISTS t_{test_id}"))
        await engine.dispose()


@pytest.fixture
def settings(stack: LocalStack, test_id: str) -> CommonSettings:
    """Settings pointing at the session's servers, namespaced for this test."""
    return CommonSettings(
        redis_url=stack.redis.url,
        database_url=f"{stack.mariadb.url}/t_{test_id}",
        kafka_bootstrap=stack.kafka.bootstrap,
        redis_key_prefix=f"t{test_id}",
        kafka_topic_prefix=f"t{test_id}.",
    )


@pytest.fixture
async def redis_client(stack: LocalStack) -> AsyncIterator[aioredis.Redis]:
    client = aioredis.Redis.from_url(stack.redis.url)
    try:
        yield client
    finally:
        await client.aclose()
