"""Two deliveries of one reservation request handled at once (a rebalance hands a partition over
mid-payment) open one payment, settle it once and announce the same outcome."""

import asyncio

from sqlalchemy.ext.asyncio import AsyncEngine
from ticketing.common.kafka import ensure_topics
from ticketing.common.producer import RenewingProducer
from ticketing.common.settings import CommonSettings
from ticketing.common.topics import TopicFamily, Topics
from ticketing.payment.gateway import SimulatedGateway
from ticketing.payment.models import PaymentStatus
from ticketing.payment.service import PaymentService

from tests.core.sale_kit import read_topic
from tests.core.test_payment import payments, request


async def test_two_deliveries_at_once_settle_one_payment_with_one_outcome(
    engine: AsyncEngine, settings: CommonSettings
) -> None:
    topics = Topics(settings.kafka_topic_prefix)
    await ensure_topics(
        settings.kafka_bootstrap, settings.topic_specs({topics.reservation_paid: TopicFamily.MAIN})
    )
    producer = RenewingProducer(settings.kafka_bootstrap, "payment-concurrent-test")
    await producer.start()
    # Slow enough that both deliveries are at the provider before either settles.
    gateway = SimulatedGateway(latency_seconds=0.2, failure_rate=0.0)
    service = PaymentService(engine, gateway, producer, topics, seat_price_cents=5000)
    try:
        first, second = await asyncio.gather(service.pay(request()), service.pay(request()))
    finally:
        await producer.stop()

    assert first.status is second.status is PaymentStatus.SUCCEEDED
    assert first.id == second.id
    assert first.gateway_reference == second.gateway_reference
    assert set(gateway.calls) == {"r1"}, "every charge used the reservation's idempotency key"
    assert await payments(engine) == 1
    published = await read_topic(settings.kafka_bootstrap, topics.reservation_paid, 2)
    assert {m.message_id for m in published} == {"r1:reservation.paid"}
