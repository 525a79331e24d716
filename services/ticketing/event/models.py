"""The event table and the shapes the API accepts and returns."""

from datetime import UTC, datetime
from enum import StrEnum
from typing import Self

import sqlalchemy as sa
from pydantic import AwareDatetime, field_validator, model_validator
from sqlmodel import Column, Field, SQLModel

from ticketing.common.ids import Name, Slug
from ticketing.common.sqltypes import UtcDateTime, utcnow


class EventStatus(StrEnum):
    DRAFT = "draft"
    PUBLISHED = "published"
    CANCELLED = "cancelled"


class EventBase(SQLModel):
    title: Name = Field(min_length=1, max_length=200)
    venue_id: Slug = Field(max_length=100, index=True)
    opens_at: AwareDatetime
    closes_at: AwareDatetime
    status: EventStatus = EventStatus.PUBLISHED

    @field_validator("opens_at", "closes_at")
    @classmethod
    def _in_utc(cls, value: datetime) -> datetime:
        return value.astimezone(UTC)

    @model_validator(mode="after")
    def _sale_window_is_ordered(self) -> Self:
        if self.closes_at <= self.opens_at:
            raise ValueError("closes_at must be after opens_at")
        return self


class EventCreate(EventBase):
    """A new event; without an id, one is made from the title."""

    id: Slug | None = None


class Event(EventBase, table=True):
    __tablename__ = "events"

    id: str = Field(primary_key=True, max_length=100)
    opens_at: datetime = Field(sa_column=Column(UtcDateTime, nullable=False, index=True))
    closes_at: datetime = Field(sa_column=Column(UtcDateTime, nullable=False))
    status: EventStatus = Field(sa_column=Column(sa.String(16), nullable=False))
    created_at: datetime = Field(
        default_factory=utcnow, sa_column=Column(UtcDateTime, nullable=False)
    )


class EventPublic(EventBase):
    id: str
    created_at: datetime
