"""Malformed and oversized Kafka messages end in the dead-letter topic, and the consumer that
met them goes on to apply the next good message: the real ConsumerRunner with the retry
ladder's failure hook, the one the services use."""

from collections.abc import AsyncIterator
from typing import Any

import pytest
import redis.asyncio as aioredis
from sqlalchemy.ext.asyncio import AsyncEngine
from ticketing.common.background import background
from ticketing.common.consumer import ConsumerRunner
from ticketing.common.envelope import Envelope
from ticketing.common.kafka import ensure_topics
from ticketing.common.producer import RenewingProducer
from ticketing.common.resources import open_database
from ticketing.common.settings import CommonSettings
from ticketing.common.topics import RESERVATION_PAID, TopicFamily, Topics
from ticketing.reservation.consumers import payment_outcome_handler
from ticketing.reservation.models import ReservationStatus
from ticketing.reservation.service import ReservationService
from ticketing.retry import headers as retry_headers
from ticketing.retry.failure import RetryFailureHandler
from ticketing.retry.policy import ladder_topics

from tests.core.sale_kit import eventually, make_sale, read_records, reservation_settings

# Kafka's default limit for one record is 1 MiB; these stay just under it so the broker takes
# them, and a dead letter (the same value plus headers) still fits.
NEAR_LIMIT = 900 * 1024


def _envelope(type_: str, payload: dict[str, Any]) -> bytes:
    return Envelope.new(type_, key="k", payload=payload).to_bytes()


BAD_MESSAGES: dict[str, bytes | None] = {
    "not-json": b"\x00\xff garbage {",
    "json-not-an-envelope": b'{"hello": "world"}',
    "envelope-of-unknown-type": _envelope("reservation.teleported", {"reservation_id": "r"}),
    "payload-without-reservation": _envelope(RESERVATION_PAID, {"seats": ["A-1"]}),
    "unknown-reservation": _envelope(RESERVATION_PAID, {"reservation_id": "nobody"}),
    "empty-value": None,
    "oversized-garbage": b"x" * NEAR_LIMIT,
    "oversized-envelope": _envelope(RESERVATION_PAID, {"reservation_id": "r" * NEAR_LIMIT}),
}


@pytest.fixture
async def engine(migrated_database: str) -> AsyncIterator[AsyncEngine]:
    async with open_database(migrated_database) as engine:
        yield engine


@pytest.fixture
async def producer(settings: CommonSettings) -> AsyncIterator[RenewingProducer]:
    producer = RenewingProducer(settings.kafka_bootstrap, "hardening-dlq")
    await producer.start()
    try:
        yield producer
    finally:
        await producer.stop()


@pytest.mark.slow
async def test_bad_messages_are_dead_lettered_and_the_next_good_one_is_applied(
    engine: AsyncEngine,
    redis_client: aioredis.Redis,
    settings: CommonSettings,
    producer: RenewingProducer,
) -> None:
    topics = Topics(settings.kafka_topic_prefix)
    paid_topic, dead_topic = topics.reservation_paid, topics.dead_letter(RESERVATION_PAID)
    await ensure_topics(
        settings.kafka_bootstrap,
        settings.topic_specs({paid_topic: TopicFamily.MAIN} | ladder_topics(topics)),
    )
    service = ReservationService(engine, redis_client, reservation_settings(settings))
    event = await make_sale(redis_client, settings.redis_key_prefix, seats=1)
    reservation = await service.reserve("alice", event, ["A-1"])
    # One key for all: the good message waits behind every bad one in the same partition.
    key = reservation.id.encode()
    for value in BAD_MESSAGES.values():
        await producer.send_and_wait(paid_topic, value, key=key)
    paid = Envelope.new(
        RESERVATION_PAID, key=reservation.id, payload={"reservation_id": reservation.id}
    )
    await producer.send_and_wait(paid_topic, paid.to_bytes(), key=key)

    group = topics.name("hardening")
    runner = ConsumerRunner(
        bootstrap=settings.kafka_bootstrap,
        group=group,
        topics=[paid_topic],
        handler=payment_outcome_handler(service),
        failure_handler=RetryFailureHandler(producer, topics, group),
        redis=redis_client,
        redis_prefix=settings.redis_key_prefix,
        dedup_window_seconds=settings.dedup_window_seconds,
    )
    async with background(consumer=runner.run()):

        async def confirmed() -> bool:
            current = await service.get("alice", reservation.id)
            return current.status is ReservationStatus.CONFIRMED

        await eventually(confirmed, within=60)

    dead = await read_records(settings.kafka_bootstrap, dead_topic, len(BAD_MESSAGES))
    assert [record.value for record in dead] == list(BAD_MESSAGES.values())
    classes = [dict(record.headers)[retry_headers.ERROR_CLASS] for record in dead]
    assert set(classes) == {b"MalformedMessage", b"ReservationNotFound"}
    print(f"{len(dead)} bad messages dead-lettered, largest {NEAR_LIMIT} bytes")
