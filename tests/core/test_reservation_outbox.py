"""Nothing lost, nothing doubled: the outbox survives a crash before the Kafka send, and the
consumer runner applies a redelivered message once and dead-letters what it cannot read."""

import asyncio
from collections.abc import Mapping
from typing import Any

import pytest
import redis.asyncio as aioredis
from aiokafka.errors import KafkaError
from prometheus_client import REGISTRY
from sqlalchemy import text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncEngine
from ticketing.common.background import background
from ticketing.common.consumer import ConsumerRunner
from ticketing.common.envelope import Envelope
from ticketing.common.kafka import ensure_topics
from ticketing.common.prepared import DriverTransaction, Prepared
from ticketing.common.producer import RenewingProducer
from ticketing.common.settings import CommonSettings
from ticketing.common.topics import RESERVATION_PAID, TopicFamily, Topics
from ticketing.reservation.consumers import CONSUMED_TOPICS, payment_outcome_handler
from ticketing.reservation.models import ReservationStatus
from ticketing.reservation.outbox import OutboxRelay
from ticketing.reservation.service import ReservationService
from ticketing.retry import headers as retry_headers
from ticketing.retry.failure import RetryFailureHandler
from ticketing.retry.policy import ladder_topics
from ticketing_dev.stack import LocalStack

from tests.core.sale_kit import (
    count_tickets,
    eventually,
    make_sale,
    read_records,
    read_topic,
    reservation_settings,
    seat_states,
)
from tests.hardening.platform import frozen


@pytest.fixture
def service(
    engine: AsyncEngine, redis_client: aioredis.Redis, settings: CommonSettings
) -> ReservationService:
    return ReservationService(engine, redis_client, reservation_settings(settings))


@pytest.fixture
async def topics(settings: CommonSettings) -> Topics:
    topics = Topics(settings.kafka_topic_prefix)
    names = [topics.name(t) for t in CONSUMED_TOPICS]
    main = dict.fromkeys([*names, topics.reservation_requested], TopicFamily.MAIN)
    await ensure_topics(
        settings.kafka_bootstrap, settings.topic_specs(main | ladder_topics(topics))
    )
    return topics


async def test_reservation_committed_before_a_crash_is_published_when_the_relay_starts(
    service: ReservationService,
    engine: AsyncEngine,
    redis_client: aioredis.Redis,
    settings: CommonSettings,
    topics: Topics,
) -> None:
    event = await make_sale(redis_client, settings.redis_key_prefix, seats=2)
    # The process "dies" right after the commit: no relay ever ran for this reservation.
    reservation = await service.reserve("alice", event, ["A-1", "A-2"])

    producer = RenewingProducer(settings.kafka_bootstrap, "relay-after-restart")
    await producer.start()
    try:
        relay = OutboxRelay(
            engine, producer, topics, asyncio.Event(), poll_seconds=0.1, claim_seconds=60
        )
        assert await relay.publish_pending() == 1
        assert await relay.publish_pending() == 0
    finally:
        await producer.stop()

    [published] = await read_topic(settings.kafka_bootstrap, topics.reservation_requested, 1)
    assert published.message_id == f"{reservation.id}:requested"
    assert published.key == reservation.id
    assert published.payload["seat_ids"] == ["A-1", "A-2"]


async def test_a_relay_whose_send_fails_gives_its_claim_back_at_once(
    service: ReservationService,
    engine: AsyncEngine,
    redis_client: aioredis.Redis,
    settings: CommonSettings,
    topics: Topics,
) -> None:
    event = await make_sale(redis_client, settings.redis_key_prefix, seats=1)
    reservation = await service.reserve("alice", event, ["A-1"])
    # A real producer that cannot deliver: its topics do not exist and the broker creates none,
    # so it gives up waiting for their metadata after one second.
    nowhere = Topics(f"{settings.kafka_topic_prefix}missing-")
    failing = RenewingProducer(settings.kafka_bootstrap, "relay-nowhere", request_timeout_ms=1000)
    working = RenewingProducer(settings.kafka_bootstrap, "relay-after-failure")
    await failing.start()
    await working.start()
    try:
        broken = OutboxRelay(
            engine, failing, nowhere, asyncio.Event(), poll_seconds=0.1, claim_seconds=60
        )
        with pytest.raises(KafkaError):
            await broken.publish_pending()
        # Its claim would hold the row for 60 s had the failed relay kept it.
        relay = OutboxRelay(
            engine, working, topics, asyncio.Event(), poll_seconds=0.1, claim_seconds=60
        )
        assert await relay.publish_pending() == 1
    finally:
        await failing.stop()
        await working.stop()

    [published] = await read_topic(settings.kafka_bootstrap, topics.reservation_requested, 1)
    assert published.message_id == f"{reservation.id}:requested"


@pytest.fixture
async def relay_with_nothing_to_send(
    engine: AsyncEngine, settings: CommonSettings, topics: Topics
) -> OutboxRelay:
    """A relay on an empty outbox: its producer is never started, as no round reaches it."""
    producer = RenewingProducer(settings.kafka_bootstrap, "relay-with-nothing-to-send")
    await producer.stop()
    return OutboxRelay(
        engine, producer, topics, asyncio.Event(), poll_seconds=0.1, claim_seconds=60
    )


async def test_a_relay_stopped_while_the_database_is_not_answering_gives_its_connection_back(
    engine: AsyncEngine, stack: LocalStack, relay_with_nothing_to_send: OutboxRelay
) -> None:
    # A service stopping cancels its relay wherever it is: here, waiting on the database right
    # after taking a connection from the pool. A connection not given back is cut off only when
    # the garbage collector finds it (seen in CI: the next test failed on its warning).
    relay = relay_with_nothing_to_send
    assert await relay.publish_pending() == 0
    pool = engine.sync_engine.pool

    with frozen([stack.mariadb.process]):
        # The connection just handed back is handed out again without a ping.
        claiming = asyncio.create_task(relay.publish_pending())
        await asyncio.sleep(0.5)
        claiming.cancel()
    await asyncio.wait([claiming], timeout=10)

    assert claiming.cancelled()
    assert pool.checkedout() == 0  # type: ignore[attr-defined]


async def test_an_outbox_row_written_while_the_relay_claims_does_not_wait_for_the_claim(
    migrated_database: str,
    relay_with_nothing_to_send: OutboxRelay,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # Under REPEATABLE READ the claim's locking read would also lock the index gap where new
    # rows go: every hold, which writes an outbox row, would wait for the relay's transaction.
    relay = relay_with_nothing_to_send
    url = make_url(migrated_database)
    written: list[tuple[int | None, str]] = []

    read_rows = DriverTransaction.all

    async def read_then_write_a_row_with_another_client(
        transaction: DriverTransaction, statement: Prepared, values: Mapping[str, Any]
    ) -> list[dict[str, Any]]:
        rows = await read_rows(transaction, statement, values)
        # The claim's transaction is open, its locking read done, while the mariadb client runs.
        if "FOR UPDATE" in statement.sql and not written:
            row = "('written-meanwhile', 'reservation.requested', 'r-1', 'v', NOW())"
            client = await asyncio.create_subprocess_exec(
                "mariadb",
                f"--host={url.host}",
                f"--port={url.port}",
                f"--user={url.username}",
                f"--password={url.password}",
                str(url.database),
                "-e",
                "SET SESSION innodb_lock_wait_timeout = 2;"
                " INSERT INTO reservation_outbox (message_id, topic, `key`, value,"
                f" created_at) VALUES {row}",
                stderr=asyncio.subprocess.PIPE,
            )
            _, stderr = await client.communicate()
            written.append((client.returncode, stderr.decode()))
        return rows

    monkeypatch.setattr(DriverTransaction, "all", read_then_write_a_row_with_another_client)

    assert await relay.publish_pending() == 0
    [(returncode, stderr)] = written
    assert returncode == 0, stderr


async def test_a_batch_sent_while_the_database_refused_its_mark_is_marked_next_round_not_resent(
    service: ReservationService,
    engine: AsyncEngine,
    redis_client: aioredis.Redis,
    settings: CommonSettings,
    topics: Topics,
) -> None:
    event = await make_sale(redis_client, settings.redis_key_prefix, seats=1)
    reservation = await service.reserve("alice", event, ["A-1"])
    # The database takes the claim but refuses to mark the row sent, as one that went away
    # between the broker's ack and the mark would.
    async with engine.begin() as conn:
        await conn.execute(
            text(
                "CREATE TRIGGER outbox_mark_refused BEFORE UPDATE ON reservation_outbox "
                "FOR EACH ROW BEGIN IF NEW.sent_at IS NOT NULL THEN "
                "SIGNAL SQLSTATE '45000' SET MESSAGE_TEXT = 'database away'; END IF; END"
            )
        )
    producer = RenewingProducer(settings.kafka_bootstrap, "relay-mark-refused")
    await producer.start()
    try:
        relay = OutboxRelay(
            engine, producer, topics, asyncio.Event(), poll_seconds=0.1, claim_seconds=60
        )
        with pytest.raises(DBAPIError):
            await relay.publish_pending()
        async with engine.begin() as conn:
            await conn.execute(text("DROP TRIGGER outbox_mark_refused"))
        # Back: the row is marked without being claimed or sent again, long before its claim
        # would lapse.
        assert await relay.publish_pending() == 0
    finally:
        await producer.stop()

    async with engine.connect() as conn:
        unsent = await conn.scalar(
            text("SELECT COUNT(*) FROM reservation_outbox WHERE sent_at IS NULL")
        )
    assert unsent == 0
    [published] = await read_topic(settings.kafka_bootstrap, topics.reservation_requested, 1)
    assert published.message_id == f"{reservation.id}:requested"


def _count(group: str, topic: str, outcome: str) -> float:
    labels = {"group": group, "topic": topic, "outcome": outcome}
    return REGISTRY.get_sample_value("ticketing_messages_total", labels) or 0.0


async def test_payment_delivered_twice_sells_once_and_garbage_goes_to_dead_letters(
    service: ReservationService,
    engine: AsyncEngine,
    redis_client: aioredis.Redis,
    settings: CommonSettings,
    topics: Topics,
) -> None:
    event = await make_sale(redis_client, settings.redis_key_prefix, seats=2)
    reservation = await service.reserve("alice", event, ["A-1", "A-2"])
    paid = Envelope.new(
        RESERVATION_PAID,
        key=reservation.id,
        message_id=f"{reservation.id}:{RESERVATION_PAID}",
        payload={"reservation_id": reservation.id},
    )
    producer = RenewingProducer(settings.kafka_bootstrap, "test-payments")
    await producer.start()
    group = f"{settings.kafka_topic_prefix}reservation"
    paid_topic = topics.reservation_paid
    try:
        await producer.send_and_wait(paid_topic, b"not an envelope", key=reservation.id.encode())
        for _ in range(2):
            await producer.send_and_wait(paid_topic, paid.to_bytes(), key=reservation.id.encode())
        runner = ConsumerRunner(
            bootstrap=settings.kafka_bootstrap,
            group=group,
            topics=[topics.name(t) for t in CONSUMED_TOPICS],
            handler=payment_outcome_handler(service),
            failure_handler=RetryFailureHandler(producer, topics, group),
            redis=redis_client,
            redis_prefix=settings.redis_key_prefix,
            dedup_window_seconds=settings.dedup_window_seconds,
        )
        async with background(consumer=runner.run()):

            async def all_three_handled() -> bool:
                handled = sum(
                    _count(group, paid_topic, o) for o in ("applied", "duplicate", "failed")
                )
                return handled == 3

            await eventually(all_three_handled, within=60)
    finally:
        await producer.stop()

    assert _count(group, paid_topic, "duplicate") == 1
    assert (await service.get("alice", reservation.id)).status is ReservationStatus.CONFIRMED
    assert await count_tickets(engine, event) == 2
    states = await seat_states(redis_client, settings.redis_key_prefix, event)
    assert set(states.values()) == {f"sold:{reservation.id}"}
    [dead] = await read_records(settings.kafka_bootstrap, topics.dead_letter(RESERVATION_PAID), 1)
    assert dead.value == b"not an envelope"
    assert (retry_headers.ERROR_CLASS, b"MalformedMessage") in dead.headers
