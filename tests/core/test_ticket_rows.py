"""The tickets a confirmation issues: one row per seat, naming the sale, the seat, the
reservation and the buyer, stamped when issued."""

import redis.asyncio as aioredis
from sqlalchemy.ext.asyncio import AsyncEngine
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession
from ticketing.common.settings import CommonSettings
from ticketing.common.sqltypes import utcnow
from ticketing.reservation.lifecycle import Trigger
from ticketing.reservation.models import Ticket
from ticketing.reservation.service import ReservationService

from tests.core.sale_kit import Clock, make_sale, reservation_settings


async def test_paid_reservation_gets_one_ticket_per_seat_naming_buyer_and_reservation(
    engine: AsyncEngine, redis_client: aioredis.Redis, settings: CommonSettings
) -> None:
    service = ReservationService(engine, redis_client, reservation_settings(settings), Clock())
    event = await make_sale(redis_client, settings.redis_key_prefix, seats=3)
    reservation = await service.reserve("alice", event, ["A-1", "A-3"])
    before = utcnow()

    await service.apply(reservation.id, Trigger.PAID)

    async with AsyncSession(engine) as session:
        query = select(Ticket).where(Ticket.event_id == event).order_by(col(Ticket.seat_id))
        tickets = list((await session.exec(query)).all())
    assert [(t.seat_id, t.reservation_id, t.user_id) for t in tickets] == [
        ("A-1", reservation.id, "alice"),
        ("A-3", reservation.id, "alice"),
    ]
    assert all(t.id is not None and before <= t.issued_at <= utcnow() for t in tickets)
