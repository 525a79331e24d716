"""Reservation tables (reservations, tickets, the outbox) and the shapes the API returns."""

import uuid
from datetime import datetime
from enum import StrEnum
from typing import Annotated

from pydantic import StringConstraints, field_validator
from sqlalchemy import JSON, Enum, Index, LargeBinary, UniqueConstraint
from sqlmodel import Column, Field, SQLModel

from ticketing.common.sqltypes import UtcDateTime, utcnow

MAX_SEATS_PER_RESERVATION = 4


def new_reservation_id() -> str:
    return uuid.uuid4().hex


class ReservationStatus(StrEnum):
    PENDING = "PENDING"
    CONFIRMED = "CONFIRMED"
    FAILED = "FAILED"
    EXPIRED = "EXPIRED"
    CANCELLED = "CANCELLED"


class ReservationBase(SQLModel):
    event_id: str = Field(max_length=64)
    seat_ids: list[str] = Field(sa_column=Column(JSON, nullable=False))
    status: ReservationStatus = Field(
        sa_column=Column(Enum(ReservationStatus, native_enum=False, length=16), nullable=False)
    )
    expires_at: datetime = Field(sa_column=Column(UtcDateTime, nullable=False))


class Reservation(ReservationBase, table=True):
    __tablename__ = "reservations"
    # The sweeper's query: pending reservations whose hold has run out.
    __table_args__ = (Index("ix_reservations_status_expires_at", "status", "expires_at"),)

    id: str = Field(default_factory=new_reservation_id, primary_key=True, max_length=32)
    user_id: str = Field(max_length=64, index=True)
    refund_requested: bool = False
    created_at: datetime = Field(
        default_factory=utcnow, sa_column=Column(UtcDateTime, nullable=False)
    )
    updated_at: datetime = Field(
        default_factory=utcnow, sa_column=Column(UtcDateTime, nullable=False)
    )


class ReservationPublic(ReservationBase):
    id: str
    created_at: datetime


class ReservationRequest(SQLModel):
    seat_ids: list[Annotated[str, StringConstraints(min_length=1, max_length=64)]] = Field(
        min_length=1, max_length=MAX_SEATS_PER_RESERVATION
    )

    @field_validator("seat_ids")
    @classmethod
    def _each_seat_once(cls, value: list[str]) -> list[str]:
        if len(set(value)) != len(value):
            raise ValueError("a seat is listed twice")
        return value


class Ticket(SQLModel, table=True):
    """One sold seat. UNIQUE(event_id, seat_id) is the last word against selling a seat twice."""

    __tablename__ = "tickets"
    __table_args__ = (UniqueConstraint("event_id", "seat_id", name="uq_tickets_event_seat"),)

    id: int | None = Field(default=None, primary_key=True)
    event_id: str = Field(max_length=64)
    seat_id: str = Field(max_length=64)
    reservation_id: str = Field(max_length=32, index=True)
    user_id: str = Field(max_length=64)
    issued_at: datetime = Field(
        default_factory=utcnow, sa_column=Column(UtcDateTime, nullable=False)
    )


class OutboxMessage(SQLModel, table=True):
    """A Kafka message written in the same transaction as the change it announces."""

    __tablename__ = "reservation_outbox"

    id: int | None = Field(default=None, primary_key=True)
    message_id: str = Field(max_length=128, unique=True)
    topic: str = Field(max_length=128)
    key: str = Field(max_length=64)
    value: bytes = Field(sa_column=Column(LargeBinary, nullable=False))
    created_at: datetime = Field(
        default_factory=utcnow, sa_column=Column(UtcDateTime, nullable=False)
    )
    sent_at: datetime | None = Field(default=None, sa_column=Column(UtcDateTime, index=True))
    # A relay is sending the row until then; a relay that died mid-send leaves it to the next.
    claimed_until: datetime | None = Field(default=None, sa_column=Column(UtcDateTime))
    # Set when the broker refused the row for good (too large, an invalid topic): the relay no
    # longer claims it, and clearing both sends it again.
    refused_at: datetime | None = Field(default=None, sa_column=Column(UtcDateTime))
    refused_reason: str | None = Field(default=None, max_length=255)
