"""Several retry workers share one backlog: each message goes back once, and a worker that dies
after claiming loses nothing."""

import asyncio
import time
from collections import Counter

import redis.asyncio as aioredis
from ticketing.common.kafka import ensure_topics
from ticketing.common.producer import RenewingProducer
from ticketing.common.settings import CommonSettings
from ticketing.common.topics import TopicFamily, Topics
from ticketing.retry.deadletters import read_topic
from ticketing.retry.queue import DelayQueue
from ticketing.retry.worker import RetryWorker, backlog

from tests.retry.factories import make_parked
from tests.retry.ladder import eventually

LEASE_MS = 2000
BATCH = 200


async def _backlog_of(queue: DelayQueue, topic: str, count: int) -> None:
    for start in range(0, count, 1000):
        await queue.park([make_parked(topic, n) for n in range(start, min(start + 1000, count))])


async def _run_workers(
    settings: CommonSettings, queue: DelayQueue, count: int, stop: asyncio.Event
) -> list[asyncio.Task[None]]:
    async def one(worker_id: int) -> None:
        producer = RenewingProducer(settings.kafka_bootstrap, f"retry-worker-{worker_id}")
        await producer.start()
        try:
            await RetryWorker(queue, producer, LEASE_MS, BATCH, poll_interval_s=0.05).run(stop)
        finally:
            await producer.stop()

    return [asyncio.create_task(one(i)) for i in range(count)]


async def _resent(settings: CommonSettings, topic: str) -> Counter[bytes]:
    return Counter(r.value for r in await read_topic(settings.kafka_bootstrap, topic))


async def test_three_workers_resend_each_of_10000_messages_exactly_once_despite_a_dead_claimant(
    settings: CommonSettings, redis_client: aioredis.Redis
) -> None:
    topic = Topics(settings.kafka_topic_prefix).reservation_paid
    await ensure_topics(settings.kafka_bootstrap, settings.topic_specs({topic: TopicFamily.MAIN}))
    queue = DelayQueue(redis_client, settings.redis_key_prefix)
    await _backlog_of(queue, topic, 10_000)
    # A worker killed between its claim and its send: it holds these and never sends them.
    orphaned = await queue.claim(topic, int(time.time() * 1000), LEASE_MS, limit=BATCH)
    stop = asyncio.Event()
    workers = await _run_workers(settings, queue, 3, stop)

    async def drained() -> bool:
        return await backlog(queue) == 0

    try:
        await eventually(drained, timeout_s=180)
    finally:
        stop.set()
        await asyncio.gather(*workers)
    resent = await _resent(settings, topic)
    assert len(orphaned) == BATCH
    assert set(resent) == {str(n).encode() for n in range(10_000)}
    assert set(resent.values()) == {1}


async def test_a_worker_cancelled_mid_run_loses_no_message(
    settings: CommonSettings, redis_client: aioredis.Redis
) -> None:
    topic = Topics(settings.kafka_topic_prefix).reservation_paid
    await ensure_topics(settings.kafka_bootstrap, settings.topic_specs({topic: TopicFamily.MAIN}))
    queue = DelayQueue(redis_client, settings.redis_key_prefix)
    await _backlog_of(queue, topic, 3000)
    stop = asyncio.Event()
    victim, *survivors = await _run_workers(settings, queue, 3, stop)

    async def started() -> bool:
        return await backlog(queue) < 2500

    await eventually(started)
    victim.cancel()

    async def drained() -> bool:
        return await backlog(queue) == 0

    try:
        await eventually(drained, timeout_s=120)
    finally:
        stop.set()
        await asyncio.gather(victim, *survivors, return_exceptions=True)
    resent = await _resent(settings, topic)
    assert set(resent) == {str(n).encode() for n in range(3000)}
    # At least once: only what the victim had in flight when it died can arrive twice.
    assert sum(resent.values()) - len(resent) <= BATCH
