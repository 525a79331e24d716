"""The reservation service's statements that run for every reservation, prepared once for the
engine's dialect (`ticketing.common.prepared`)."""

from sqlalchemy import insert, select, update
from sqlalchemy.engine import Dialect
from sqlmodel import col

from ticketing.common.prepared import Prepared, PreparedIn
from ticketing.reservation.models import OutboxMessage, Reservation, Ticket


class ReservationStatements:
    def __init__(self, dialect: Dialect) -> None:
        self.insert_reservation = Prepared(insert(Reservation), dialect)
        self.insert_outbox = Prepared(insert(OutboxMessage), dialect)
        # The rows status changes start from: read and locked until the commit.
        self.lock_reservations = PreparedIn(
            lambda ids: select(Reservation).where(col(Reservation.id).in_(ids)).with_for_update(),
            dialect,
        )
        # Reservations moved to the same status in one transaction share one UPDATE.
        self.update_reservations = PreparedIn(
            lambda ids: update(Reservation).where(col(Reservation.id).in_(ids)),
            dialect,
            columns=["status", "updated_at", "refund_requested"],
        )
        self.insert_tickets = Prepared(
            insert(Ticket),
            dialect,
            columns=["event_id", "seat_id", "reservation_id", "user_id", "issued_at"],
        )
