"""The payments table, keyed for idempotency by the reservation it pays for."""

import uuid
from datetime import datetime
from enum import StrEnum

from sqlalchemy import Enum
from sqlmodel import Column, Field, SQLModel

from ticketing.common.sqltypes import UtcDateTime, utcnow


class PaymentStatus(StrEnum):
    PENDING = "PENDING"
    SUCCEEDED = "SUCCEEDED"
    FAILED = "FAILED"
    REFUNDED = "REFUNDED"


class PaymentBase(SQLModel):
    # The idempotency key: one payment per reservation, however often it is requested.
    reservation_id: str = Field(max_length=32, unique=True)
    event_id: str = Field(max_length=64)
    user_id: str = Field(max_length=64)
    amount_cents: int
    status: PaymentStatus = Field(
        sa_column=Column(Enum(PaymentStatus, native_enum=False, length=16), nullable=False)
    )
    failure_reason: str = Field(default="", max_length=255)
    gateway_reference: str = Field(default="", max_length=64)


class Payment(PaymentBase, table=True):
    __tablename__ = "payments"

    id: str = Field(default_factory=lambda: uuid.uuid4().hex, primary_key=True, max_length=32)
    created_at: datetime = Field(
        default_factory=utcnow, sa_column=Column(UtcDateTime, nullable=False)
    )
    updated_at: datetime = Field(
        default_factory=utcnow, sa_column=Column(UtcDateTime, nullable=False)
    )


class PaymentPublic(PaymentBase):
    id: str
    created_at: datetime
    updated_at: datetime
