"""An outbox row the broker will never take (larger than its topic allows) is set aside with the
reason, once, and the rows behind it, of the same key and partition, are sent in order. Before,
every relay round sent it again, failed, and gave the whole batch back: nothing behind it left."""

import asyncio

from prometheus_client import REGISTRY
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine
from ticketing.common.prepared import driver_transaction
from ticketing.common.producer import RenewingProducer
from ticketing.common.settings import CommonSettings
from ticketing.common.topics import Topics
from ticketing.reservation.models import OutboxMessage
from ticketing.reservation.outbox import OutboxRelay
from ticketing.reservation.statements import ReservationStatements

from tests.core.sale_kit import SMALL_TOPIC_MAX_BYTES, read_records

# `small_topic` under the test's topic prefix.
SMALL = "small"


def refused() -> float:
    return REGISTRY.get_sample_value("ticketing_outbox_refused_total", {"topic": SMALL}) or 0.0


async def test_a_row_the_broker_never_takes_is_set_aside_and_the_rows_behind_it_are_sent(
    engine: AsyncEngine, settings: CommonSettings, small_topic: str
) -> None:
    values = [b"before", b"x" * (2 * SMALL_TOPIC_MAX_BYTES), b"after-1", b"after-2"]
    insert_outbox = ReservationStatements(engine.dialect).insert_outbox
    async with driver_transaction(engine) as transaction:
        for n, value in enumerate(values):
            row = OutboxMessage(message_id=f"m-{n}", topic=SMALL, key="one-key", value=value)
            await transaction.execute(insert_outbox, row.model_dump())
    refused_before = refused()
    producer = RenewingProducer(settings.kafka_bootstrap, "relay-refused-row")
    await producer.start()
    try:
        relay = OutboxRelay(
            engine,
            producer,
            Topics(settings.kafka_topic_prefix),
            asyncio.Event(),
            poll_seconds=0.1,
            claim_seconds=60,
        )
        assert await relay.publish_pending() == 3
        # The refused row is not claimed again.
        assert await relay.publish_pending() == 0
    finally:
        await producer.stop()

    records = await read_records(settings.kafka_bootstrap, small_topic, 3)
    assert [r.value for r in records] == [b"before", b"after-1", b"after-2"]
    assert refused() - refused_before == 1
    async with engine.connect() as conn:
        rows = (
            await conn.execute(
                text(
                    "SELECT message_id, sent_at IS NOT NULL, refused_at IS NOT NULL,"
                    " refused_reason FROM reservation_outbox ORDER BY id"
                )
            )
        ).all()
    assert [tuple(row[:3]) for row in rows] == [
        ("m-0", 1, 0),
        ("m-1", 0, 1),
        ("m-2", 1, 0),
        ("m-3", 1, 0),
    ]
    assert rows[1].refused_reason.startswith("MessageSizeTooLargeError")
