"""The retry consumer keeps a retry record it could not park: it commits nothing, reads the
record again, and parks it once Redis answers."""

import asyncio

import redis.asyncio as aioredis
from redis.asyncio.cluster import RedisCluster
from ticketing.common.kafka import ensure_topics, make_producer
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


async def test_retry_record_whose_parking_failed_is_parked_later_not_lost(
    settings: CommonSettings, redis_client: aioredis.Redis
) -> None:
    topics = Topics(settings.kafka_topic_prefix)
    await ensure_topics(settings.kafka_bootstrap, settings.topic_specs(ladder_topics(topics)))
    producer = make_producer(settings.kafka_bootstrap, "park-failure-test")
    await producer.start()
    try:
        hook = RetryFailureHandler(producer, topics, "reservation")
        await hook(Record(topics.reservation_paid), ConnectionError("redis restarting"))
    finally:
        await producer.stop()
    # A real Redis error on every park (WRONGTYPE), until the test takes the key away.
    topics_key = RetryKeys(settings.redis_key_prefix).topics
    await redis_client.set(topics_key, "not a set")
    queue = DelayQueue(redis_client, settings.redis_key_prefix)
    consumer = make_retry_consumer(settings.kafka_bootstrap, topics)
    await consumer.start()
    stop = asyncio.Event()
    task = asyncio.create_task(run_retry_consumer(consumer, queue, stop, park_backoff_s=0.05))
    try:

        async def assigned() -> bool:
            return bool(consumer.assignment())

        await eventually(assigned, timeout_s=60)
        # Long enough for the record to be read and its parking to fail several times.
        await asyncio.sleep(2)
        committed = [await consumer.committed(tp) for tp in consumer.assignment()]
        assert not task.done(), "the retry consumer stopped when parking failed"
        assert set(committed) == {None}, "an offset was committed for a record never parked"

        await redis_client.delete(topics_key)

        async def parked() -> bool:
            return await backlog(queue) == 1

        await eventually(parked, timeout_s=30)
    finally:
        stop.set()
        await asyncio.gather(task, return_exceptions=True)
        await consumer.stop()


async def test_a_cluster_client_reaching_no_node_leaves_the_record_to_be_parked_later(
    settings: CommonSettings, redis_client: aioredis.Redis
) -> None:
    """A cluster client raises `RedisClusterException`, not a `RedisError`, when no node it knows
    answers (its seed node killed before its first command): the consumer keeps running and
    commits nothing, and the record is parked by the next consumer that reaches Redis."""
    topics = Topics(settings.kafka_topic_prefix)
    await ensure_topics(settings.kafka_bootstrap, settings.topic_specs(ladder_topics(topics)))
    producer = make_producer(settings.kafka_bootstrap, "park-failure-test")
    await producer.start()
    try:
        hook = RetryFailureHandler(producer, topics, "reservation")
        await hook(Record(topics.reservation_paid), ConnectionError("redis failing over"))
    finally:
        await producer.stop()
    unreachable = RedisCluster(host="127.0.0.1", port=free_port())
    stop = asyncio.Event()
    consumer = make_retry_consumer(settings.kafka_bootstrap, topics)
    await consumer.start()
    task = asyncio.create_task(
        run_retry_consumer(
            consumer, DelayQueue(unreachable, settings.redis_key_prefix), stop, park_backoff_s=0.05
        )
    )
    try:

        async def assigned() -> bool:
            return bool(consumer.assignment())

        await eventually(assigned, timeout_s=60)
        await asyncio.sleep(2)
        committed = [await consumer.committed(tp) for tp in consumer.assignment()]
        assert not task.done(), "the retry consumer stopped when the cluster was unreachable"
        assert set(committed) == {None}, "an offset was committed for a record never parked"
    finally:
        stop.set()
        await asyncio.gather(task, return_exceptions=True)
        await consumer.stop()
        await unreachable.aclose()

    queue = DelayQueue(redis_client, settings.redis_key_prefix)
    consumer = make_retry_consumer(settings.kafka_bootstrap, topics)
    await consumer.start()
    stop = asyncio.Event()
    task = asyncio.create_task(run_retry_consumer(consumer, queue, stop))
    try:

        async def parked() -> bool:
            return await backlog(queue) == 1

        await eventually(parked, timeout_s=60)
    finally:
        stop.set()
        await asyncio.gather(task, return_exceptions=True)
        await consumer.stop()
