"""What the payment service does: charge each reservation once and announce the outcome.

The outcome is published from inside the consumer, before its offset is committed, instead of
through an outbox: if the process dies after the payment row is written but before the send,
the request is redelivered, finds the row, and publishes the stored outcome without charging
again. The row is the record and the uncommitted offset is the reminder, so nothing is lost.
"""

import logging
from collections.abc import Mapping, Sequence
from datetime import datetime

from pydantic import BaseModel
from sqlalchemy import bindparam, insert, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncEngine
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from ticketing.common.coalesce import Coalescer
from ticketing.common.envelope import Envelope
from ticketing.common.errors import PermanentError
from ticketing.common.prepared import Prepared, driver_transaction
from ticketing.common.producer import RenewingProducer
from ticketing.common.sqltypes import utcnow
from ticketing.common.topics import RESERVATION_PAID, RESERVATION_PAYMENT_FAILED, Topics
from ticketing.payment.gateway import Charge, PaymentGateway
from ticketing.payment.models import Payment, PaymentStatus

log = logging.getLogger(__name__)

# The most payments one transaction opens or settles. The consumer runs at most this many
# messages at once by default anyway.
MAX_BATCH = 100


class ReservationRequested(BaseModel):
    reservation_id: str
    event_id: str
    user_id: str
    seat_ids: list[str]
    expires_at: datetime


class RefundRequested(BaseModel):
    reservation_id: str
    reason: str = ""


class PaymentNotFound(PermanentError):
    """No payment exists for the reservation."""


class PaymentService:
    def __init__(
        self,
        engine: AsyncEngine,
        gateway: PaymentGateway,
        producer: RenewingProducer,
        topics: Topics,
        seat_price_cents: int,
    ) -> None:
        self._engine = engine
        self._gateway = gateway
        self._producer = producer
        self._topics = topics
        self._seat_price_cents = seat_price_cents
        # Prepared on the driver: each runs once per payment, and SQLAlchemy's execution of a
        # statement costs more CPU than the statement (`ticketing.common.prepared`).
        self._open = Prepared(insert(Payment), engine.dialect)
        # Only a PENDING payment takes an outcome: of two deliveries settling at once, the
        # second changes nothing.
        self._settle_pending = Prepared(
            update(Payment)
            .where(col(Payment.reservation_id) == bindparam("reservation_id"))
            .where(col(Payment.status) == PaymentStatus.PENDING),
            engine.dialect,
            columns=["status", "gateway_reference", "failure_reason", "updated_at"],
        )
        # The payments opened, and settled, while others are: under load they share transactions
        # (one INSERT for the opens, one COMMIT for the settles) instead of one each.
        self._opens = Coalescer(self._open_many, MAX_BATCH)
        self._settles = Coalescer(self._settle_many, MAX_BATCH)

    async def pay(self, request: ReservationRequested) -> Payment:
        """Charge the reservation (once, whatever the number of deliveries) and publish the outcome."""
        payment = await self._find_or_open(request)
        if payment.status is PaymentStatus.PENDING:
            payment = await self._settle(payment, request)
        await self._publish_outcome(payment)
        return payment

    async def refund(self, request: RefundRequested) -> Payment:
        """Give the money back for a reservation that could not be sold; safe to repeat."""
        async with AsyncSession(self._engine, expire_on_commit=False) as session, session.begin():
            payment = await self._by_reservation(session, request.reservation_id, lock=True)
            if payment is None:
                raise PaymentNotFound(f"no payment for reservation {request.reservation_id}")
            if payment.status is PaymentStatus.SUCCEEDED:
                await self._gateway.refund(payment.reservation_id)
                payment.status = PaymentStatus.REFUNDED
                payment.failure_reason = request.reason[:255]
                payment.updated_at = utcnow()
                log.info("payment refunded", extra={"reservation_id": payment.reservation_id})
        return payment

    async def get(self, reservation_id: str) -> Payment:
        payment = await self._stored(reservation_id)
        if payment is None:
            raise PaymentNotFound(f"no payment for reservation {reservation_id}")
        return payment

    async def _find_or_open(self, request: ReservationRequested) -> Payment:
        payment = Payment(
            reservation_id=request.reservation_id,
            event_id=request.event_id,
            user_id=request.user_id,
            amount_cents=len(request.seat_ids) * self._seat_price_cents,
            status=PaymentStatus.PENDING,
        )
        return await self._opens.submit(payment)

    async def _open_many(self, payments: Sequence[Payment]) -> list[Payment]:
        """Each payment opened, or found when a delivery before this one opened it. Nearly every
        request is a first delivery, so one INSERT opens every payment of the batch; a batch that
        meets the UNIQUE key (a redelivery among them) opens its payments one by one."""
        if len(payments) > 1:
            try:
                async with driver_transaction(self._engine) as transaction:
                    await transaction.insert_many(self._open, [p.model_dump() for p in payments])
            except IntegrityError:
                pass
            else:
                return list(payments)
        return [await self._open_one(payment) for payment in payments]

    async def _open_one(self, payment: Payment) -> Payment:
        try:
            async with driver_transaction(self._engine) as transaction:
                await transaction.execute(self._open, payment.model_dump())
        except IntegrityError:
            existing = await self._stored(payment.reservation_id)
            if existing is None:
                raise
            return existing
        return payment

    async def _settle(self, payment: Payment, request: ReservationRequested) -> Payment:
        if utcnow() >= request.expires_at:
            # The hold is gone: taking the money would only mean refunding it.
            approved, reference, reason = False, "", "hold expired before payment"
        else:
            result = await self._gateway.charge(
                Charge(payment.reservation_id, payment.user_id, payment.amount_cents)
            )
            approved, reference, reason = result.approved, result.reference, result.decline_reason
        outcome: dict[str, object] = {
            "reservation_id": payment.reservation_id,
            "status": PaymentStatus.SUCCEEDED if approved else PaymentStatus.FAILED,
            "gateway_reference": reference,
            "failure_reason": reason,
            "updated_at": utcnow(),
        }
        if await self._settles.submit(outcome):
            stored = Payment.model_validate({**payment.model_dump(), **outcome})
        else:
            found = await self._stored(payment.reservation_id)
            if found is None:
                raise PaymentNotFound(f"payment for {payment.reservation_id} disappeared")
            stored = found
        log.info("payment %s", stored.status.value, extra={"reservation_id": stored.reservation_id})
        return stored

    async def _settle_many(self, outcomes: Sequence[Mapping[str, object]]) -> list[bool]:
        """Whether each outcome settled its payment (False: another delivery settled it first).
        One conditional UPDATE each, in one transaction, in the order of their reservations:
        two transactions settling the same payments then wait for each other, not deadlock."""
        settled: dict[object, bool] = {}
        async with driver_transaction(self._engine) as transaction:
            for outcome in sorted(outcomes, key=lambda o: str(o["reservation_id"])):
                changed = await transaction.execute(self._settle_pending, outcome)
                settled[outcome["reservation_id"]] = changed == 1
        return [settled[outcome["reservation_id"]] for outcome in outcomes]

    async def _stored(self, reservation_id: str) -> Payment | None:
        async with AsyncSession(self._engine, expire_on_commit=False) as session:
            return await self._by_reservation(session, reservation_id)

    async def _publish_outcome(self, payment: Payment) -> None:
        payload: dict[str, object] = {
            "reservation_id": payment.reservation_id,
            "payment_id": payment.id,
        }
        if payment.status is PaymentStatus.FAILED:
            topic = RESERVATION_PAYMENT_FAILED
            payload["reason"] = payment.failure_reason
        else:
            # SUCCEEDED, or REFUNDED after a later refund: the payment did happen.
            topic = RESERVATION_PAID
            payload["amount_cents"] = payment.amount_cents
        envelope = Envelope.new(
            topic,
            key=payment.reservation_id,
            # One id per outcome, so a re-publication is a duplicate to the reservation service.
            message_id=f"{payment.reservation_id}:{topic}",
            payload=payload,
        )
        await self._producer.send_and_wait(
            self._topics.name(topic), envelope.to_bytes(), key=envelope.key.encode()
        )

    @staticmethod
    async def _by_reservation(
        session: AsyncSession, reservation_id: str, lock: bool = False
    ) -> Payment | None:
        query = select(Payment).where(Payment.reservation_id == reservation_id)
        if lock:
            query = query.with_for_update()
        return (await session.exec(query)).first()
