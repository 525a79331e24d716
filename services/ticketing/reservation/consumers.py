"""The reservation service's Kafka handler: payment outcomes confirm or release reservations."""

from pydantic import BaseModel, ValidationError

from ticketing.common.consumer import Handler
from ticketing.common.envelope import Envelope
from ticketing.common.errors import MalformedMessage
from ticketing.common.topics import RESERVATION_PAID, RESERVATION_PAYMENT_FAILED
from ticketing.reservation.lifecycle import Trigger
from ticketing.reservation.service import ReservationService

TRIGGERS = {RESERVATION_PAID: Trigger.PAID, RESERVATION_PAYMENT_FAILED: Trigger.PAYMENT_FAILED}
CONSUMED_TOPICS = tuple(TRIGGERS)


class PaymentOutcome(BaseModel):
    reservation_id: str


def payment_outcome_handler(service: ReservationService) -> Handler:
    async def handle(envelope: Envelope) -> None:
        trigger = TRIGGERS.get(envelope.type)
        if trigger is None:
            raise MalformedMessage(f"unexpected message type {envelope.type!r}")
        try:
            outcome = PaymentOutcome.model_validate(envelope.payload)
        except ValidationError as exc:
            raise MalformedMessage(f"payment outcome without a reservation: {exc}") from exc
        await service.apply(outcome.reservation_id, trigger)

    return handle
