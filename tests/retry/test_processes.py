"""`python -m ticketing retry-consumer` and `retry-worker` run as their own processes: a failed
message comes back to its topic after its delay, /metrics shows the ladder, SIGTERM stops both."""

import asyncio
import os
import signal
import sys

import httpx
import pytest
from ticketing.common.kafka import ensure_topics
from ticketing.common.producer import RenewingProducer
from ticketing.common.settings import CommonSettings
from ticketing.common.topics import RESERVATION_REQUESTED, TopicFamily, Topics
from ticketing.retry.deadletters import read_topic
from ticketing.retry.failure import RetryFailureHandler
from ticketing.retry.headers import decode
from ticketing_dev.ports import free_port

from tests.retry.factories import Record
from tests.retry.ladder import eventually


async def _start(
    command: str, settings: CommonSettings, metrics_port: int
) -> asyncio.subprocess.Process:
    env = {
        **os.environ,
        "TICKETING_REDIS_URL": settings.redis_url,
        "TICKETING_KAFKA_BOOTSTRAP": settings.kafka_bootstrap,
        "TICKETING_REDIS_KEY_PREFIX": settings.redis_key_prefix,
        "TICKETING_KAFKA_TOPIC_PREFIX": settings.kafka_topic_prefix,
        "TICKETING_RETRY_METRICS_PORT": str(metrics_port),
        "TICKETING_RETRY_POLL_INTERVAL_MS": "50",
    }
    return await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "ticketing",
        command,
        env=env,
        stdout=asyncio.subprocess.DEVNULL,
        stderr=asyncio.subprocess.DEVNULL,
    )


@pytest.mark.slow
async def test_retry_processes_bring_a_failed_message_back_and_stop_on_sigterm(
    settings: CommonSettings,
) -> None:
    topics = Topics(settings.kafka_topic_prefix)
    topic = topics.reservation_requested
    await ensure_topics(settings.kafka_bootstrap, settings.topic_specs({topic: TopicFamily.MAIN}))
    metrics_port = free_port()
    consumer = await _start("retry-consumer", settings, 0)
    worker = await _start("retry-worker", settings, metrics_port)
    producer = RenewingProducer(settings.kafka_bootstrap, "process-test")
    await producer.start()
    try:
        # The processes create the ladder's topics; the hook needs them to exist.
        await ensure_topics(
            settings.kafka_bootstrap,
            settings.topic_specs({topics.retry(RESERVATION_REQUESTED, 1): TopicFamily.RETRY}),
        )
        hook = RetryFailureHandler(producer, topics, "reservation")
        await hook(Record(topic, value=b"payload"), TimeoutError("database timeout"))

        async def came_back() -> bool:
            return bool(await read_topic(settings.kafka_bootstrap, topic))

        await eventually(came_back, timeout_s=60)
        async with httpx.AsyncClient() as client:
            metrics = (await client.get(f"http://127.0.0.1:{metrics_port}/metrics")).text
    finally:
        await producer.stop()
        for process in (consumer, worker):
            process.send_signal(signal.SIGTERM)
        codes = [await asyncio.wait_for(p.wait(), 30) for p in (consumer, worker)]
    [record] = await read_topic(settings.kafka_bootstrap, topic)
    _, state = decode(record.headers)
    assert record.value == b"payload"
    assert state is not None and state.attempt == 1
    assert state.last.error_class == "TimeoutError"
    assert f'ticketing_retry_resent_total{{topic="{topic}"}} 1.0' in metrics
    assert codes == [0, 0]
