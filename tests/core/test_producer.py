"""A send the broker refused costs that send only: the producer's later sends to the same
partition are taken, in order (with aiokafka's own idempotent producer every one of them is
refused with OutOfOrderSequenceNumber, for as long as the process lives)."""

from collections.abc import AsyncIterator

import pytest
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.errors import MessageSizeTooLargeError
from prometheus_client import REGISTRY
from ticketing.common.producer import RenewingProducer
from ticketing.common.settings import CommonSettings

from tests.core.sale_kit import read_records

# The topic's largest batch; the client's own limit (1 MiB) lets a larger one reach the broker.
TOPIC_MAX_BYTES = 1000


@pytest.fixture
async def small_topic(settings: CommonSettings) -> AsyncIterator[str]:
    """A one-partition topic whose broker refuses a batch over TOPIC_MAX_BYTES."""
    name = f"{settings.kafka_topic_prefix}small"
    admin = AIOKafkaAdminClient(bootstrap_servers=settings.kafka_bootstrap)
    await admin.start()
    try:
        await admin.create_topics(
            [NewTopic(name, 1, 1, topic_configs={"max.message.bytes": str(TOPIC_MAX_BYTES)})]
        )
        yield name
    finally:
        await admin.close()


def renewals(client_id: str) -> float:
    return (
        REGISTRY.get_sample_value(
            "ticketing_kafka_producer_renewals_total", {"client_id": client_id}
        )
        or 0.0
    )


async def test_the_sends_after_one_the_broker_refused_are_taken(
    settings: CommonSettings, small_topic: str
) -> None:
    client_id = f"{settings.kafka_topic_prefix}refused"
    producer = RenewingProducer(settings.kafka_bootstrap, client_id)
    await producer.start()
    try:
        await producer.send_and_wait(small_topic, b"before")
        with pytest.raises(MessageSizeTooLargeError):
            await producer.send_and_wait(small_topic, b"x" * (2 * TOPIC_MAX_BYTES))
        for value in (b"after-1", b"after-2", b"after-3"):
            await producer.send_and_wait(small_topic, value)
    finally:
        await producer.stop()

    records = await read_records(settings.kafka_bootstrap, small_topic, 4)
    assert [r.value for r in records] == [b"before", b"after-1", b"after-2", b"after-3"]
    assert renewals(client_id) == 1
