"""The payment service charges each reservation once, however often it is asked, and says so."""

import asyncio
from collections.abc import AsyncIterator
from datetime import timedelta

import pytest
from sqlalchemy import func
from sqlalchemy.ext.asyncio import AsyncEngine
from sqlmodel import select
from sqlmodel.ext.asyncio.session import AsyncSession
from ticketing.common.kafka import ensure_topics
from ticketing.common.producer import RenewingProducer
from ticketing.common.settings import CommonSettings
from ticketing.common.sqltypes import utcnow
from ticketing.common.topics import TopicFamily, Topics
from ticketing.payment.gateway import SimulatedGateway
from ticketing.payment.models import Payment, PaymentStatus
from ticketing.payment.service import PaymentService, RefundRequested, ReservationRequested

from tests.core.sale_kit import read_topic


@pytest.fixture
async def topics(settings: CommonSettings) -> Topics:
    topics = Topics(settings.kafka_topic_prefix)
    main = [topics.reservation_paid, topics.reservation_payment_failed]
    await ensure_topics(
        settings.kafka_bootstrap, settings.topic_specs(dict.fromkeys(main, TopicFamily.MAIN))
    )
    return topics


@pytest.fixture
async def producer(settings: CommonSettings) -> AsyncIterator[RenewingProducer]:
    producer = RenewingProducer(settings.kafka_bootstrap, "payment-test")
    await producer.start()
    try:
        yield producer
    finally:
        await producer.stop()


def request(reservation_id: str = "r1", hold_seconds: float = 300) -> ReservationRequested:
    return ReservationRequested(
        reservation_id=reservation_id,
        event_id="ev",
        user_id="alice",
        seat_ids=["A-1", "A-2"],
        expires_at=utcnow() + timedelta(seconds=hold_seconds),
    )


def make_service(
    engine: AsyncEngine, producer: RenewingProducer, topics: Topics, failure_rate: float = 0.0
) -> tuple[PaymentService, SimulatedGateway]:
    gateway = SimulatedGateway(latency_seconds=0.0, failure_rate=failure_rate)
    return PaymentService(engine, gateway, producer, topics, seat_price_cents=5000), gateway


async def payments(engine: AsyncEngine) -> int:
    async with AsyncSession(engine) as session:
        return int((await session.exec(select(func.count()).select_from(Payment))).one())


async def test_redelivered_request_charges_once_and_republishes_the_same_outcome(
    engine: AsyncEngine, producer: RenewingProducer, topics: Topics, settings: CommonSettings
) -> None:
    service, gateway = make_service(engine, producer, topics)

    first = await service.pay(request())
    again = await service.pay(request())

    assert first.status is again.status is PaymentStatus.SUCCEEDED
    assert first.amount_cents == 10_000
    assert gateway.calls["r1"] == 1
    assert await payments(engine) == 1
    published = await read_topic(settings.kafka_bootstrap, topics.reservation_paid, 2)
    assert {m.message_id for m in published} == {"r1:reservation.paid"}


async def test_declined_charge_publishes_payment_failed_with_the_reason(
    engine: AsyncEngine, producer: RenewingProducer, topics: Topics, settings: CommonSettings
) -> None:
    service, _ = make_service(engine, producer, topics, failure_rate=1.0)

    payment = await service.pay(request())

    assert payment.status is PaymentStatus.FAILED
    [failed] = await read_topic(settings.kafka_bootstrap, topics.reservation_payment_failed, 1)
    assert failed.payload == {
        "reservation_id": "r1",
        "payment_id": payment.id,
        "reason": "card declined (simulated)",
    }


async def test_request_arriving_after_the_hold_expired_is_not_charged(
    engine: AsyncEngine, producer: RenewingProducer, topics: Topics
) -> None:
    service, gateway = make_service(engine, producer, topics)

    payment = await service.pay(request(hold_seconds=-1))

    assert payment.status is PaymentStatus.FAILED
    assert payment.failure_reason == "hold expired before payment"
    assert gateway.calls["r1"] == 0


async def test_refund_request_refunds_a_charged_payment_once(
    engine: AsyncEngine, producer: RenewingProducer, topics: Topics
) -> None:
    service, gateway = make_service(engine, producer, topics)
    await service.pay(request())

    refunded = await service.refund(RefundRequested(reservation_id="r1", reason="expired"))
    await service.refund(RefundRequested(reservation_id="r1", reason="expired"))

    assert refunded.status is PaymentStatus.REFUNDED
    assert gateway.refunds["r1"] == 1


async def test_requests_paid_together_are_each_charged_once_with_a_redelivery_among_them(
    engine: AsyncEngine, producer: RenewingProducer, topics: Topics, settings: CommonSettings
) -> None:
    # Payments opened and settled at the same time share transactions; a redelivery among them
    # makes the shared INSERT fail, and each is then opened on its own.
    service, gateway = make_service(engine, producer, topics)
    earlier = await service.pay(request("r2"))

    paid = await asyncio.gather(*(service.pay(request(r)) for r in ("r1", "r2", "r3")))

    assert [p.status for p in paid] == [PaymentStatus.SUCCEEDED] * 3
    assert paid[1].id == earlier.id
    assert gateway.calls == {"r1": 1, "r2": 1, "r3": 1}
    assert await payments(engine) == 3
    published = await read_topic(settings.kafka_bootstrap, topics.reservation_paid, 4)
    assert sorted(m.message_id for m in published) == [
        "r1:reservation.paid",
        "r2:reservation.paid",
        "r2:reservation.paid",
        "r3:reservation.paid",
    ]
