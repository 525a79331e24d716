"""The reservation service's Kafka handler: payment outcomes confirm or release reservations.

The outcomes handled at the same time (the consumer runs many keys at once) are applied together,
one transaction and one Redis script a sale for the lot (`ReservationService.apply_many`): under
load, a confirmation then costs a share of one round trip instead of one of its own.
"""

from pydantic import BaseModel, ValidationError

from ticketing.common.coalesce import Coalescer
from ticketing.common.consumer import Handler
from ticketing.common.envelope import Envelope
from ticketing.common.errors import MalformedMessage
from ticketing.common.topics import RESERVATION_PAID, RESERVATION_PAYMENT_FAILED
from ticketing.reservation.lifecycle import Trigger
from ticketing.reservation.models import Reservation
from ticketing.reservation.service import Change, ReservationService

TRIGGERS = {RESERVATION_PAID: Trigger.PAID, RESERVATION_PAYMENT_FAILED: Trigger.PAYMENT_FAILED}
CONSUMED_TOPICS = tuple(TRIGGERS)

# The most outcomes one transaction applies: the locks it holds, and its statements' sizes, stay
# small. The consumer runs at most this many messages at once by default anyway.
MAX_BATCH = 100


class PaymentOutcome(BaseModel):
    reservation_id: str


def payment_outcome_handler(service: ReservationService) -> Handler:
    outcomes: Coalescer[Change, Reservation | Exception] = Coalescer(service.apply_many, MAX_BATCH)

    async def handle(envelope: Envelope) -> None:
        trigger = TRIGGERS.get(envelope.type)
        if trigger is None:
            raise MalformedMessage(f"unexpected message type {envelope.type!r}")
        try:
            outcome = PaymentOutcome.model_validate(envelope.payload)
        except ValidationError as exc:
            raise MalformedMessage(f"payment outcome without a reservation: {exc}") from exc
        applied = await outcomes.submit((outcome.reservation_id, trigger))
        if isinstance(applied, Exception):
            raise applied

    return handle
