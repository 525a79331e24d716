"""Venues (their layout as sections of rows and seats with price tiers) and loaded inventories."""

from datetime import datetime
from enum import StrEnum
from typing import Annotated, Any, Self

from pydantic import StringConstraints, model_validator
from sqlmodel import JSON, Column, Field, SQLModel

from ticketing.common.ids import Name, Slug
from ticketing.common.sqltypes import UtcDateTime, utcnow

MAX_SEATS_PER_VENUE = 100_000


class PriceTier(SQLModel):
    name: Name = Field(min_length=1, max_length=40)
    price_cents: int = Field(ge=0, le=100_000_000)
    currency: Annotated[str, StringConstraints(pattern=r"^[A-Z]{3}$")] = "EUR"


class Section(SQLModel):
    """`rows` rows of `seats_per_row` seats, all in one price tier; rows follow the previous section's."""

    name: Name = Field(min_length=1, max_length=40)
    rows: int = Field(ge=1, le=500)
    seats_per_row: int = Field(ge=1, le=500)
    price_tier: Name = Field(min_length=1, max_length=40)


class VenueLayout(SQLModel):
    sections: list[Section] = Field(min_length=1, max_length=50)
    price_tiers: list[PriceTier] = Field(min_length=1, max_length=20)

    @model_validator(mode="after")
    def _consistent(self) -> Self:
        tiers = [tier.name for tier in self.price_tiers]
        if len(set(tiers)) != len(tiers):
            raise ValueError("price tier names must be unique")
        sections = [section.name for section in self.sections]
        if len(set(sections)) != len(sections):
            raise ValueError("section names must be unique")
        for section in self.sections:
            if section.price_tier not in tiers:
                raise ValueError(f"section {section.name!r} uses unknown price tier")
        if self.count_seats() > MAX_SEATS_PER_VENUE:
            raise ValueError(f"a venue has at most {MAX_SEATS_PER_VENUE} seats")
        return self

    def count_seats(self) -> int:
        return sum(section.rows * section.seats_per_row for section in self.sections)


class VenueBase(SQLModel):
    name: Name = Field(min_length=1, max_length=200)


class VenueCreate(VenueBase, VenueLayout):
    """A new venue; without an id, one is made from the name."""

    id: Slug | None = None


class VenuePut(VenueBase, VenueLayout):
    pass


class Venue(VenueBase, table=True):
    __tablename__ = "venues"

    id: str = Field(primary_key=True, max_length=100)
    # The layout is small, read whole and never queried into, so it is one JSON document.
    layout: dict[str, Any] = Field(sa_column=Column(JSON, nullable=False))
    seat_count: int
    created_at: datetime = Field(
        default_factory=utcnow, sa_column=Column(UtcDateTime, nullable=False)
    )


class Seat(SQLModel):
    id: str
    section: str
    row: int
    number: int
    price_tier: Name = Field(min_length=1, max_length=40)


class VenuePublic(VenueBase, VenueLayout):
    id: str
    seat_count: int
    seats: list[Seat]


class Inventory(SQLModel, table=True):
    """A sale whose seats were loaded into Redis, and the venue they came from."""

    __tablename__ = "inventories"

    event_id: str = Field(primary_key=True, max_length=100)
    venue_id: str = Field(max_length=100)
    seat_count: int
    loaded_at: datetime = Field(
        default_factory=utcnow, sa_column=Column(UtcDateTime, nullable=False)
    )


class InventoryLoaded(SQLModel):
    event_id: str
    venue_id: str
    seats: int
    added: int = Field(description="seats that were not in the inventory yet")


class SeatState(StrEnum):
    FREE = "free"
    HELD = "held"
    SOLD = "sold"
    # The seat is in the venue but not in Redis: the inventory was lost and must be loaded again.
    UNKNOWN = "unknown"


class SeatStatus(Seat):
    state: SeatState


class EventSeats(SQLModel):
    event_id: str
    venue_id: str
    counts: dict[SeatState, int]
    seats: list[SeatStatus]


class FreeSeats(SQLModel):
    """The sale's free seats alone, by id: what a buyer picks from, a few bytes a seat."""

    event_id: str
    counts: dict[SeatState, int]
    free: list[str]
