"""The payment service's Kafka handler: reservation requests are charged, refund requests refunded."""

from typing import TypeVar

from pydantic import BaseModel, ValidationError

from ticketing.common.consumer import Handler
from ticketing.common.envelope import Envelope
from ticketing.common.errors import MalformedMessage
from ticketing.common.topics import RESERVATION_REFUND_REQUESTED, RESERVATION_REQUESTED
from ticketing.payment.service import PaymentService, RefundRequested, ReservationRequested

M = TypeVar("M", bound=BaseModel)

CONSUMED_TOPICS = (RESERVATION_REQUESTED, RESERVATION_REFUND_REQUESTED)


def _parse(model: type[M], envelope: Envelope) -> M:
    try:
        return model.model_validate(envelope.payload)
    except ValidationError as exc:
        raise MalformedMessage(f"{envelope.type} payload is invalid: {exc}") from exc


def payment_handler(service: PaymentService) -> Handler:
    async def handle(envelope: Envelope) -> None:
        if envelope.type == RESERVATION_REQUESTED:
            await service.pay(_parse(ReservationRequested, envelope))
        elif envelope.type == RESERVATION_REFUND_REQUESTED:
            await service.refund(_parse(RefundRequested, envelope))
        else:
            raise MalformedMessage(f"unexpected message type {envelope.type!r}")

    return handle
