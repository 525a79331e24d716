"""A running retry ladder for end-to-end tests: the real ConsumerRunner with the retry failure
hook, the retry consumer and retry workers, on the session's Kafka and Redis."""

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Any

import redis.asyncio as aioredis
from ticketing.common.consumer import ConsumerRunner
from ticketing.common.envelope import Envelope
from ticketing.common.kafka import ensure_topics
from ticketing.common.producer import RenewingProducer
from ticketing.common.settings import CommonSettings
from ticketing.common.topics import TopicFamily, Topics
from ticketing.retry.consumer import make_retry_consumer, run_retry_consumer
from ticketing.retry.failure import RetryFailureHandler
from ticketing.retry.policy import RetryPolicy, ladder_topics
from ticketing.retry.queue import DelayQueue
from ticketing.retry.worker import RetryWorker

POLL_INTERVAL_S = 0.05


@dataclass
class Ladder:
    settings: CommonSettings
    topics: Topics
    redis: aioredis.Redis
    queue: DelayQueue
    producer: Any

    async def send(self, topic: str, envelope: Envelope) -> None:
        await self.producer.send_and_wait(
            self.topics.name(topic), envelope.to_bytes(), key=envelope.key.encode()
        )


@contextlib.asynccontextmanager
async def running_ladder(
    settings: CommonSettings,
    handler: Callable[[Envelope], Awaitable[None]],
    policies: Mapping[str, RetryPolicy],
    workers: int = 1,
) -> AsyncIterator[Ladder]:
    topics = Topics(settings.kafka_topic_prefix)
    main = dict.fromkeys(map(topics.name, policies), TopicFamily.MAIN)
    await ensure_topics(
        settings.kafka_bootstrap, settings.topic_specs(main | ladder_topics(topics, policies))
    )
    client = aioredis.Redis.from_url(settings.redis_url)
    producer = RenewingProducer(settings.kafka_bootstrap, "ladder-test")
    await producer.start()
    queue = DelayQueue(client, settings.redis_key_prefix)
    ladder = Ladder(settings, topics, client, queue, producer)
    group = topics.name("handler")
    runner = ConsumerRunner(
        bootstrap=settings.kafka_bootstrap,
        group=group,
        topics=[topics.name(t) for t in policies],
        handler=handler,
        failure_handler=RetryFailureHandler(producer, topics, group, policies),
        redis=client,
        redis_prefix=settings.redis_key_prefix,
        dedup_window_seconds=settings.dedup_window_seconds,
    )
    retry_consumer = make_retry_consumer(settings.kafka_bootstrap, topics, policies)
    await retry_consumer.start()
    stop = asyncio.Event()
    tasks = [
        asyncio.create_task(runner.run()),
        asyncio.create_task(run_retry_consumer(retry_consumer, queue, stop)),
        *(
            asyncio.create_task(
                RetryWorker(queue, producer, 30_000, 100, POLL_INTERVAL_S).run(stop)
            )
            for _ in range(workers)
        ),
    ]
    try:
        yield ladder
    finally:
        stop.set()
        tasks[0].cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        await retry_consumer.stop()
        await producer.stop()
        await client.aclose()


async def eventually(check: Callable[[], Awaitable[bool]], timeout_s: float = 30) -> None:
    """Wait until `check` holds; fail the test after `timeout_s`."""
    deadline = time.monotonic() + timeout_s
    while not await check():
        assert time.monotonic() < deadline, "condition not reached in time"
        await asyncio.sleep(0.05)
