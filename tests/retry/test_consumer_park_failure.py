"""The retry consumer keeps a retry record it could not park: it commits nothing, reads the
record again, and parks it once Redis answers."""

import asyncio
import contextlib
from collections.abc import AsyncIterator
from typing import Any

import redis.asyncio as aioredis
from redis.asyncio.cluster import RedisCluster
from ticketing.common.kafka import ensure_topics
from ticketing.common.producer import RenewingProducer
from ticketing.common.redis_keys import RetryKeys
from ticketing.common.settings import CommonSettings
from ticketing.common.topics import Topics
from ticketing.retry.consumer import make_retry_consumer, run_retry_consumer
from ticketing.retry.failure import RetryFailureHandler
from ticketing.retry.policy import ladder_topics
from ticketing.retry.queue import DelayQueue
from ticketing.retry.worker import backlog
from ticketing_dev.ports import free_port

from tests.retry.factories import Record
from tests.retry.ladder import eventually


async def _one_failed_outcome(settings: CommonSettings) -> Topics:
    """A payment outcome sent down the first retry step, as a failed handling sends it."""
    topics = Topics(settings.kafka_topic_prefix)
    await ensure_topics(settings.kafka_bootstrap, settings.topic_specs(ladder_topics(topics)))
    producer = RenewingProducer(settings.kafka_bootstrap, "park-failure-test")
    await producer.start()
    try:
        hook = RetryFailureHandler(producer, topics, "reservation")
        await hook(Record(topics.reservation_paid), ConnectionError("redis away"))
    finally:
        await producer.stop()
    return topics


@contextlib.asynccontextmanager
async def _parking(
    settings: CommonSettings, topics: Topics, queue: DelayQueue
) -> AsyncIterator[tuple[Any, asyncio.Task[None]]]:
    """A retry consumer parking into `queue` until the block ends: (consumer, its task)."""
    consumer = make_retry_consumer(settings.kafka_bootstrap, topics)
    await consumer.start()
    stop = asyncio.Event()
    task = asyncio.create_task(run_retry_consumer(consumer, queue, stop, park_backoff_s=0.05))
    try:
        yield consumer, task
    finally:
        stop.set()
        await asyncio.gather(task, return_exceptions=True)
        await consumer.stop()


async def _assert_kept_unparked(consumer: Any, task: asyncio.Task[None]) -> None:
    """Once the record has been read and its parking failed several times: the consumer still
    runs and has committed nothing."""

    async def assigned() -> bool:
        return bool(consumer.assignment())

    await eventually(assigned, timeout_s=60)
    await asyncio.sleep(2)
    committed = [await consumer.committed(tp) for tp in consumer.assignment()]
    assert not task.done(), "the retry consumer stopped when parking failed"
    assert set(committed) == {None}, "an offset was committed for a record never parked"


async def _assert_parked(queue: DelayQueue) -> None:
    async def parked() -> bool:
        return await backlog(queue) == 1

    await eventually(parked, timeout_s=60)


async def test_retry_record_whose_parking_failed_is_parked_later_not_lost(
    settings: CommonSettings, redis_client: aioredis.Redis
) -> None:
    topics = await _one_failed_outcome(settings)
    # A real Redis error on every park (WRONGTYPE), until the test takes the key away.
    topics_key = RetryKeys(settings.redis_key_prefix).topics
    await redis_client.set(topics_key, "not a set")
    queue = DelayQueue(redis_client, settings.redis_key_prefix)
    async with _parking(settings, topics, queue) as (consumer, task):
        await _assert_kept_unparked(consumer, task)
        await redis_client.delete(topics_key)
        await _assert_parked(queue)


async def test_a_cluster_client_reaching_no_node_leaves_the_record_to_be_parked_later(
    settings: CommonSettings, redis_client: aioredis.Redis
) -> None:
    """A cluster client raises `RedisClusterException`, not a `RedisError`, when no node it knows
    answers (its seed node killed before its first command): the consumer keeps running and
    commits nothing, and the record is parked by the next consumer that reaches Redis."""
    topics = await _one_failed_outcome(settings)
    unreachable = RedisCluster(host="127.0.0.1", port=free_port())
    try:
        away = DelayQueue(unreachable, settings.redis_key_prefix)
        async with _parking(settings, topics, away) as (consumer, task):
            await _assert_kept_unparked(consumer, task)
    finally:
        await unreachable.aclose()
    queue = DelayQueue(redis_client, settings.redis_key_prefix)
    async with _parking(settings, topics, queue):
        await _assert_parked(queue)
