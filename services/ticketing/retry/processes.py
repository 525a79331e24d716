"""The ladder's two processes, run by `python -m ticketing retry-consumer` and `... retry-worker`.

Each creates the ladder's topics it needs, serves /metrics, and stops cleanly on SIGTERM or
SIGINT. Stopping at any moment is safe: the consumer re-reads uncommitted retry records (parked
once), and a worker's claimed-but-unsent messages return after their lease.
"""

import asyncio
import signal

import redis.asyncio as aioredis
from prometheus_client import start_http_server

from ticketing.common.kafka import ensure_topics, make_producer
from ticketing.common.topics import Topics
from ticketing.retry.consumer import make_retry_consumer, run_retry_consumer
from ticketing.retry.policy import ladder_topics
from ticketing.retry.queue import DelayQueue
from ticketing.retry.settings import RetrySettings, get_settings
from ticketing.retry.worker import RetryWorker


def _stop_on_signals() -> asyncio.Event:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    return stop


async def _prepare(settings: RetrySettings) -> Topics:
    topics = Topics(settings.kafka_topic_prefix)
    await ensure_topics(settings.kafka_bootstrap, ladder_topics(topics))
    if settings.retry_metrics_port:
        start_http_server(settings.retry_metrics_port)
    return topics


async def retry_consumer() -> None:
    settings = get_settings()
    stop = _stop_on_signals()
    topics = await _prepare(settings)
    client = aioredis.Redis.from_url(settings.redis_url)
    consumer = make_retry_consumer(settings.kafka_bootstrap, topics)
    await consumer.start()
    try:
        await run_retry_consumer(consumer, DelayQueue(client, settings.redis_key_prefix), stop)
    finally:
        await consumer.stop()
        await client.aclose()


async def retry_worker() -> None:
    settings = get_settings()
    stop = _stop_on_signals()
    await _prepare(settings)
    client = aioredis.Redis.from_url(settings.redis_url)
    producer = make_producer(settings.kafka_bootstrap, "retry-worker")
    await producer.start()
    try:
        worker = RetryWorker(
            DelayQueue(client, settings.redis_key_prefix),
            producer,
            lease_ms=settings.retry_lease_ms,
            batch=settings.retry_claim_batch,
            poll_interval_s=settings.retry_poll_interval_ms / 1000,
        )
        await worker.run(stop)
    finally:
        await producer.stop()
        await client.aclose()
