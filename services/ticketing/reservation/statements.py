"""The reservation service's statements that run for every reservation, prepared once for the
engine's dialect (`ticketing.common.prepared`)."""

from sqlalchemy import bindparam, insert, select, update
from sqlalchemy.engine import Dialect
from sqlmodel import col

from ticketing.common.prepared import Prepared
from ticketing.reservation.models import OutboxMessage, Reservation, Ticket


class ReservationStatements:
    def __init__(self, dialect: Dialect) -> None:
        self.insert_reservation = Prepared(insert(Reservation), dialect)
        self.insert_outbox = Prepared(insert(OutboxMessage), dialect)
        # The row every status change starts from: read and locked until the commit.
        self.lock_reservation = Prepared(
            select(Reservation)
            .where(col(Reservation.id) == bindparam("reservation_id"))
            .with_for_update(),
            dialect,
        )
        self.update_reservation = Prepared(
            update(Reservation).where(col(Reservation.id) == bindparam("reservation_id")),
            dialect,
            columns=["status", "updated_at", "refund_requested"],
        )
        self.insert_tickets = Prepared(
            insert(Ticket),
            dialect,
            columns=["event_id", "seat_id", "reservation_id", "user_id", "issued_at"],
        )
