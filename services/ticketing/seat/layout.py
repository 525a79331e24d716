"""From a venue's layout to its seats, numbered the one stable way (`redis_keys.seat_id`)."""

from ticketing.common.redis_keys import seat_id
from ticketing.seat.models import Seat, VenueLayout


def seat_map(layout: VenueLayout) -> list[Seat]:
    seats: list[Seat] = []
    row = 0
    for section in layout.sections:
        for _ in range(section.rows):
            row += 1
            seats.extend(
                Seat(
                    id=seat_id(row, number),
                    section=section.name,
                    row=row,
                    number=number,
                    price_tier=section.price_tier,
                )
                for number in range(1, section.seats_per_row + 1)
            )
    return seats
