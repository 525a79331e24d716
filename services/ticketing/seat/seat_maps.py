"""The seat map of each sale, kept in memory and shared by every caller of the process.

A venue's layout and an event's venue never change, so the layout is read from the database
once. The seats' states are read from Redis (one HGETALL) at most once per `max_age` seconds
per sale, by whichever caller comes first after it went stale; callers arriving while that read
is in flight wait for it. Each read is serialised once into the response body with an ETag, so
N buyers looking at the map cost one read and one serialisation per interval, not N times the
seats: every other caller gets the same bytes, or a 304 when it already has them.
"""

import asyncio
import hashlib
import time
from collections import Counter
from dataclasses import dataclass, field

import orjson
from sqlalchemy.ext.asyncio import AsyncEngine
from sqlmodel.ext.asyncio.session import AsyncSession

from ticketing.common.redis_client import RedisClient
from ticketing.common.redis_keys import SaleKeys
from ticketing.seat.inventory import seat_states
from ticketing.seat.layout import seat_map
from ticketing.seat.models import Inventory, SeatState, Venue, VenueLayout


@dataclass(frozen=True)
class SaleSeatMap:
    venue_id: str
    # Plain dicts, ready to be serialized with each seat's state added.
    seats: list[dict[str, object]]


@dataclass(frozen=True)
class Body:
    """A response body, serialised once, and its ETag."""

    content: bytes
    etag: str

    @classmethod
    def of(cls, value: object) -> "Body":
        content = orjson.dumps(value)
        return cls(content, f'"{hashlib.blake2b(content, digest_size=12).hexdigest()}"')


@dataclass(frozen=True)
class SeatStatus:
    """One read of a sale's seat states, serialised: the whole map (`GET
    /events/{id}/seats`) and the free seats' ids alone (`.../seats/free`)."""

    full: Body
    free: Body
    read_at: float


def _status(event_id: str, sale: SaleSeatMap, states: dict[str, str]) -> SeatStatus:
    # The busiest read of a sale: plain dicts and orjson, not a thousand validated models.
    seats = [
        {**seat, "state": states.get(str(seat["id"]), SeatState.UNKNOWN)} for seat in sale.seats
    ]
    counted = Counter(seat["state"] for seat in seats)
    counts = {state.value: counted.get(state, 0) for state in SeatState}
    full = {"event_id": event_id, "venue_id": sale.venue_id, "counts": counts, "seats": seats}
    free = [seat["id"] for seat in seats if seat["state"] == SeatState.FREE]
    return SeatStatus(
        Body.of(full),
        Body.of({"event_id": event_id, "counts": counts, "free": free}),
        time.monotonic(),
    )


@dataclass
class SeatMaps:
    engine: AsyncEngine
    redis: RedisClient
    key_prefix: str
    # How old a served map may be, in seconds (TICKETING_SEAT_MAP_MAX_AGE_SECONDS).
    max_age: float
    # Bounded by the number of sales with a loaded inventory, a handful per deployment.
    _by_event: dict[str, SaleSeatMap] = field(default_factory=dict)
    _status: dict[str, SeatStatus] = field(default_factory=dict)
    _reading: dict[str, asyncio.Task[SeatStatus | None]] = field(default_factory=dict)

    async def _layout(self, event_id: str) -> SaleSeatMap | None:
        """The sale's seats, or None when its inventory was never loaded."""
        if (cached := self._by_event.get(event_id)) is not None:
            return cached
        async with AsyncSession(self.engine) as session:
            inventory = await session.get(Inventory, event_id)
            venue = await session.get(Venue, inventory.venue_id) if inventory else None
        if venue is None:
            return None
        seats = seat_map(VenueLayout.model_validate(venue.layout))
        sale = SaleSeatMap(venue.id, [seat.model_dump() for seat in seats])
        self._by_event[event_id] = sale
        return sale

    async def status(self, event_id: str) -> SeatStatus | None:
        """The sale's seats with their states, at most `max_age` old; None without inventory."""
        cached = self._status.get(event_id)
        if cached is not None and time.monotonic() - cached.read_at < self.max_age:
            return cached
        reading = self._reading.get(event_id)
        if reading is None:
            reading = asyncio.create_task(self._read(event_id))
            self._reading[event_id] = reading
            reading.add_done_callback(lambda _: self._reading.pop(event_id, None))
        # Shielded: one caller giving up must not cancel the read the others wait for.
        return await asyncio.shield(reading)

    async def _read(self, event_id: str) -> SeatStatus | None:
        sale = await self._layout(event_id)
        if sale is None:
            return None
        states = await seat_states(self.redis, SaleKeys(self.key_prefix, event_id))
        status = _status(event_id, sale, states)
        self._status[event_id] = status
        return status
