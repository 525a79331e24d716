"""A retry worker outlives a Redis error: it waits, claims again, and sends what is due."""

import asyncio

import redis.asyncio as aioredis
from ticketing.common.kafka import ensure_topics
from ticketing.common.producer import RenewingProducer
from ticketing.common.redis_keys import RetryKeys
from ticketing.common.settings import CommonSettings
from ticketing.common.topics import TopicFamily, Topics
from ticketing.retry.deadletters import read_topic
from ticketing.retry.queue import DelayQueue
from ticketing.retry.worker import RetryWorker

from tests.retry.factories import make_parked
from tests.retry.ladder import eventually


async def test_worker_sends_the_backlog_once_redis_answers_again(
    settings: CommonSettings, redis_client: aioredis.Redis
) -> None:
    topic = Topics(settings.kafka_topic_prefix).reservation_paid
    await ensure_topics(settings.kafka_bootstrap, settings.topic_specs({topic: TopicFamily.MAIN}))
    # A real Redis error on every claim (WRONGTYPE), until the test takes the key away.
    topics_key = RetryKeys(settings.redis_key_prefix).topics
    await redis_client.set(topics_key, "not a set")
    queue = DelayQueue(redis_client, settings.redis_key_prefix)
    producer = RenewingProducer(settings.kafka_bootstrap, "worker-redis-error-test")
    await producer.start()
    stop = asyncio.Event()
    worker = RetryWorker(queue, producer, lease_ms=2000, batch=10, poll_interval_s=0.05)
    task = asyncio.create_task(worker.run(stop))
    try:
        await asyncio.sleep(0.5)
        assert not task.done(), "the retry worker stopped on a Redis error"
        await redis_client.delete(topics_key)
        await queue.park([make_parked(topic, 1)])

        async def resent() -> bool:
            return len(await read_topic(settings.kafka_bootstrap, topic)) == 1

        await eventually(resent, timeout_s=30)
    finally:
        stop.set()
        await asyncio.gather(task, return_exceptions=True)
        await producer.stop()
