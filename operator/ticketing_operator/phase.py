"""Where a sale stands, from the clock and the stock."""

from datetime import datetime, timedelta

from ticketing.common.sale_config import Phase

from ticketing_operator.figures import SeatFigures
from ticketing_operator.spec import SaleWindow


def sale_phase(window: SaleWindow, seats: SeatFigures, now: datetime) -> Phase:
    if now >= window.closes_at:
        return Phase.CLOSED
    if now >= window.opens_at:
        return Phase.SOLD_OUT if seats.sold_out else Phase.ON_SALE
    if now >= window.opens_at - timedelta(minutes=window.pre_queue_minutes):
        return Phase.PRE_QUEUE
    return Phase.SCHEDULED


def next_change(window: SaleWindow, phase: Phase) -> datetime | None:
    """When the clock alone moves the sale on from `phase`; None once it can only end by stock."""
    if phase is Phase.SCHEDULED:
        return window.opens_at - timedelta(minutes=window.pre_queue_minutes)
    if phase is Phase.PRE_QUEUE:
        return window.opens_at
    if phase in (Phase.ON_SALE, Phase.SOLD_OUT):
        return window.closes_at
    return None
