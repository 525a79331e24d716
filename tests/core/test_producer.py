"""A send the broker refused costs that send only: the producer's later sends to the same
partition are taken, in order (with aiokafka's own idempotent producer every one of them is
refused with OutOfOrderSequenceNumber, for as long as the process lives)."""

import pytest
from aiokafka.errors import MessageSizeTooLargeError
from prometheus_client import REGISTRY
from ticketing.common.producer import RenewingProducer
from ticketing.common.settings import CommonSettings

from tests.core.sale_kit import SMALL_TOPIC_MAX_BYTES, read_records


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
            await producer.send_and_wait(small_topic, b"x" * (2 * SMALL_TOPIC_MAX_BYTES))
        for value in (b"after-1", b"after-2", b"after-3"):
            await producer.send_and_wait(small_topic, value)
    finally:
        await producer.stop()

    records = await read_records(settings.kafka_bootstrap, small_topic, 4)
    assert [r.value for r in records] == [b"before", b"after-1", b"after-2", b"after-3"]
    assert renewals(client_id) == 1
