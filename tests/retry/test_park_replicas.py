"""Parking waits for the topic primary's replicas when asked to: a park its replica has not
confirmed is refused (so the retry consumer commits nothing and reads the batch again), and a
park that returns is on the replica, where a promoted replica would still have it."""

import asyncio
from collections.abc import AsyncIterator

import pytest
import redis.asyncio as aioredis
from ticketing.common.redis_client import RedisClient, connect_redis
from ticketing.common.redis_keys import RetryKeys
from ticketing.common.settings import CommonSettings
from ticketing.retry.queue import DelayQueue, NotReplicated
from ticketing.retry.settings import RetrySettings
from ticketing_dev.redis_cluster import RedisClusterServers

from tests.hardening.platform import frozen
from tests.retry.factories import make_parked

TOPIC = "payment.completed"
# Short, so two refused parks fit well inside the cluster's node timeout (2 s): the frozen
# replica is never marked as failed.
WAIT_MS = 300


@pytest.fixture
async def cluster_clients(
    redis_cluster: RedisClusterServers, settings: CommonSettings
) -> AsyncIterator[tuple[RedisClient, RedisClient]]:
    """Two clients, as two retry-consumer processes have: their connections are not shared."""
    cluster_settings = settings.model_copy(
        update={"redis_url": redis_cluster.url, "redis_cluster": True}
    )
    first, second = connect_redis(cluster_settings), connect_redis(cluster_settings)
    try:
        yield first, second
    finally:
        await first.aclose()
        await second.aclose()


async def test_a_park_waits_for_the_replica_of_its_topics_primary(
    cluster_clients: tuple[RedisClient, RedisClient],
    redis_cluster: RedisClusterServers,
    settings: CommonSettings,
) -> None:
    keys = RetryKeys(settings.redis_key_prefix)
    first, second = (
        DelayQueue(client, settings.redis_key_prefix, replicas=1, replica_wait_ms=WAIT_MS)
        for client in cluster_clients
    )
    message = make_parked(TOPIC, 1)
    primary = await asyncio.to_thread(redis_cluster.primary_of, keys.payloads(TOPIC))
    [replica] = await asyncio.to_thread(redis_cluster.replicas_of, primary)

    with frozen([replica.process]):
        with pytest.raises(NotReplicated, match="0 of 1 replicas"):
            await first.park([message])
        # The batch read again elsewhere (a restarted consumer, a new connection) finds the
        # message parked on the primary, and still waits for its copy.
        with pytest.raises(NotReplicated, match="0 of 1 replicas"):
            await second.park([message])

    assert await second.park([message]) == 0, "the message was parked twice"
    with replica.client() as on_replica:
        on_replica.execute_command("READONLY")
        assert on_replica.hget(keys.payloads(TOPIC), message.member) == message.dumps()


async def test_a_single_server_without_replicas_refuses_a_park_that_asks_for_one(
    redis_client: aioredis.Redis, settings: CommonSettings
) -> None:
    queue = DelayQueue(redis_client, settings.redis_key_prefix, replicas=1, replica_wait_ms=50)
    with pytest.raises(NotReplicated, match="0 of 1 replicas"):
        await queue.park([make_parked(TOPIC, 1)])


def test_parks_wait_for_one_replica_on_a_cluster_and_for_none_on_a_single_server() -> None:
    assert RetrySettings(redis_cluster=True).park_replicas == 1
    assert RetrySettings(redis_cluster=False).park_replicas == 0
    assert RetrySettings(redis_cluster=True, retry_park_replicas=0).park_replicas == 0
