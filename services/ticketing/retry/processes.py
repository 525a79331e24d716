"""The ladder's two processes, run by `python -m ticketing retry-consumer` and `... retry-worker`.

Each creates the ladder's topics it needs, serves /metrics and /healthz, and stops cleanly on
SIGTERM or SIGINT. Stopping at any moment is safe: the consumer re-reads uncommitted retry
records (parked once), and a worker's claimed-but-unsent messages return after their lease.

The probes are answered by the process's own event loop, the one its loop runs on: /healthz
fails when the loop has not finished a round within its period (or when the event loop itself
is blocked, since nothing then answers), which a server on another thread could not see.
"""

import asyncio
import contextlib
import signal
from collections.abc import AsyncIterator, Coroutine
from typing import Any

import orjson
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from ticketing.common import liveness
from ticketing.common.kafka import ensure_topics
from ticketing.common.liveness import Heartbeats
from ticketing.common.producer import RenewingProducer
from ticketing.common.redis_client import RedisClient, connect_redis
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


PROBE_READ_TIMEOUT_SECONDS = 5.0


async def _prepare(settings: RetrySettings) -> Topics:
    topics = Topics(settings.kafka_topic_prefix)
    await ensure_topics(
        settings.kafka_bootstrap,
        settings.topic_specs(ladder_topics(topics)),
        settings.kafka_wait_seconds,
    )
    return topics


def _probe_answer(path: bytes, heartbeats: Heartbeats) -> tuple[str, str, bytes]:
    """Status line, content type and body for one probe request."""
    if path == b"/healthz":
        if late := heartbeats.late():
            body = orjson.dumps({"status": "stuck", "late": late})
            return "503 Service Unavailable", "application/json", body
        return "200 OK", "application/json", orjson.dumps({"status": "ok"})
    if path == b"/metrics":
        return "200 OK", CONTENT_TYPE_LATEST, generate_latest()
    return "404 Not Found", "application/json", orjson.dumps({"detail": "not found"})


@contextlib.asynccontextmanager
async def _probes(port: int, heartbeats: Heartbeats) -> AsyncIterator[None]:
    """/metrics and /healthz on `port` (0: none), served by this event loop: a request line,
    headers to the blank line, one answer, close. Probes and scrapers need no more of HTTP."""

    async def answer(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            async with asyncio.timeout(PROBE_READ_TIMEOUT_SECONDS):
                request = await reader.readline()
                while (await reader.readline()).strip():
                    pass
            parts = request.split(b" ")
            path = parts[1].split(b"?")[0] if len(parts) > 1 else b""
            status, content_type, body = _probe_answer(path, heartbeats)
            head = (
                f"HTTP/1.1 {status}\r\nContent-Type: {content_type}\r\n"
                f"Content-Length: {len(body)}\r\nConnection: close\r\n\r\n"
            )
            writer.write(head.encode() + body)
            await writer.drain()
        except (TimeoutError, ConnectionError):
            pass
        finally:
            writer.close()

    if not port:
        yield
        return
    server = await asyncio.start_server(answer, host="0.0.0.0", port=port)
    try:
        yield
    finally:
        server.close()
        await server.wait_closed()


async def _run(
    settings: RetrySettings, name: str, period_seconds: float, loop: Coroutine[Any, Any, None]
) -> None:
    """Run the process's one loop with its heartbeat, the probes answering beside it."""
    heartbeats = Heartbeats()
    liveness.current(heartbeats.add(name, period_seconds))
    async with _probes(settings.retry_metrics_port, heartbeats):
        await loop


def _parking_queue(client: RedisClient, settings: RetrySettings) -> DelayQueue:
    return DelayQueue(
        client,
        settings.redis_key_prefix,
        replicas=settings.park_replicas,
        replica_wait_ms=settings.retry_park_replica_wait_ms,
    )


async def retry_consumer() -> None:
    settings = get_settings()
    stop = _stop_on_signals()
    topics = await _prepare(settings)
    client = connect_redis(settings)
    consumer = make_retry_consumer(settings.kafka_bootstrap, topics)
    await consumer.start()
    try:
        await _run(
            settings,
            "retry_consumer",
            settings.liveness_seconds,
            run_retry_consumer(consumer, _parking_queue(client, settings), stop),
        )
    finally:
        await consumer.stop()
        await client.aclose()


async def retry_worker() -> None:
    settings = get_settings()
    stop = _stop_on_signals()
    await _prepare(settings)
    client = connect_redis(settings)
    producer = RenewingProducer(settings.kafka_bootstrap, "retry-worker")
    await producer.start()
    try:
        worker = RetryWorker(
            DelayQueue(client, settings.redis_key_prefix),
            producer,
            lease_ms=settings.retry_lease_ms,
            batch=settings.retry_claim_batch,
            poll_interval_s=settings.retry_poll_interval_ms / 1000,
        )
        await _run(
            settings,
            "retry_worker",
            settings.liveness_seconds + settings.retry_poll_interval_ms / 1000,
            worker.run(stop),
        )
    finally:
        await producer.stop()
        await client.aclose()
