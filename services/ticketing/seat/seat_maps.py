"""The seat map of each sale, kept in memory: a venue's layout and an event's venue never change,
so after the first read the public seat-status call costs one Redis HGETALL and nothing else."""

from dataclasses import dataclass, field

from sqlmodel.ext.asyncio.session import AsyncSession

from ticketing.seat.layout import seat_map
from ticketing.seat.models import Inventory, Venue, VenueLayout


@dataclass(frozen=True)
class SaleSeatMap:
    venue_id: str
    # Plain dicts, ready to be serialized with each seat's state added.
    seats: list[dict[str, object]]


@dataclass
class SeatMaps:
    # Bounded by the number of sales with a loaded inventory, a handful per deployment.
    _by_event: dict[str, SaleSeatMap] = field(default_factory=dict)

    async def of_sale(self, session: AsyncSession, event_id: str) -> SaleSeatMap | None:
        """The sale's seats, or None when its inventory was never loaded."""
        if (cached := self._by_event.get(event_id)) is not None:
            return cached
        inventory = await session.get(Inventory, event_id)
        venue = await session.get(Venue, inventory.venue_id) if inventory else None
        if venue is None:
            return None
        seats = seat_map(VenueLayout.model_validate(venue.layout))
        sale = SaleSeatMap(venue.id, [seat.model_dump() for seat in seats])
        self._by_event[event_id] = sale
        return sale
