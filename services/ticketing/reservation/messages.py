"""The Kafka messages this service publishes, and the outbox rows that carry them.

Message ids are derived from the reservation, so a message written twice is one message to
every idempotent consumer.
"""

from ticketing.common.envelope import Envelope
from ticketing.common.topics import RESERVATION_REFUND_REQUESTED, RESERVATION_REQUESTED
from ticketing.reservation.models import OutboxMessage, Reservation


def outbox_row(envelope: Envelope) -> OutboxMessage:
    """The envelope's type is its logical topic."""
    return OutboxMessage(
        message_id=envelope.message_id,
        topic=envelope.type,
        key=envelope.key,
        value=envelope.to_bytes(),
    )


def requested(reservation: Reservation) -> OutboxMessage:
    return outbox_row(
        Envelope.new(
            RESERVATION_REQUESTED,
            key=reservation.id,
            message_id=f"{reservation.id}:requested",
            payload={
                "reservation_id": reservation.id,
                "event_id": reservation.event_id,
                "user_id": reservation.user_id,
                "seat_ids": reservation.seat_ids,
                "expires_at": reservation.expires_at.isoformat(),
            },
        )
    )


def refund_requested(reservation: Reservation, reason: str) -> OutboxMessage:
    return outbox_row(
        Envelope.new(
            RESERVATION_REFUND_REQUESTED,
            key=reservation.id,
            message_id=f"{reservation.id}:refund",
            payload={
                "reservation_id": reservation.id,
                "event_id": reservation.event_id,
                "user_id": reservation.user_id,
                "reason": reason,
            },
        )
    )
