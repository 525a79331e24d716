"""The orphan reaper: frees the seats of a reservation that was never recorded, because its
process died between the Redis hold and the MySQL commit.

It visits only holds whose hold key has expired (the sale's hold index, scored by that expiry)
and settles each by what the database says:

- no row: an EXPIRED row is recorded first, then the seats are released. The row's primary key is
  what a late commit of the real reservation collides with, so that commit fails instead of
  recording a reservation whose seats are back on sale;
- CONFIRMED: the seats are sold (the process died after the commit, before the Lua SELL);
- FAILED, EXPIRED or CANCELLED: the seats are released (likewise, before the Lua RELEASE);
- PENDING: left to the expiry sweeper.

RELEASE frees only seats still `held:<that reservation>`, so a seat sold meanwhile stays sold.
"""

import logging

from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncEngine
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from ticketing.common.redis_client import RedisClient
from ticketing.common.redis_keys import held_sales_key
from ticketing.common.sqltypes import utcnow
from ticketing.reservation.holds import ExpiredHold, SeatHolds
from ticketing.reservation.models import Reservation, ReservationStatus

log = logging.getLogger(__name__)


class OrphanReaper:
    def __init__(self, engine: AsyncEngine, redis: RedisClient, prefix: str) -> None:
        self._engine = engine
        self._redis = redis
        self._prefix = prefix
        self._holds = SeatHolds(redis, prefix)

    async def reap(self, limit: int = 100) -> int:
        """Settle up to `limit` expired holds in each sale; how many were settled."""
        settled = 0
        for event in await self._redis.smembers(held_sales_key(self._prefix)):
            event_id = event.decode() if isinstance(event, bytes) else str(event)
            holds = await self._holds.expired(event_id, limit)
            if not holds:
                continue
            statuses = await self._statuses([hold.reservation_id for hold in holds])
            for hold in holds:
                settled += await self._settle(event_id, hold, statuses.get(hold.reservation_id))
        return settled

    async def _statuses(self, reservation_ids: list[str]) -> dict[str, ReservationStatus]:
        async with AsyncSession(self._engine) as session:
            rows = await session.exec(
                select(Reservation.id, Reservation.status).where(
                    col(Reservation.id).in_(reservation_ids)
                )
            )
            return {rid: ReservationStatus(status) for rid, status in rows.all()}

    async def _settle(
        self, event_id: str, hold: ExpiredHold, status: ReservationStatus | None
    ) -> int:
        if status is None:
            if not await self._record_expired(event_id, hold):
                return 0
            log.warning(
                "freeing the seats of a reservation that was never recorded",
                extra={"reservation_id": hold.reservation_id, "seats": hold.seat_ids},
            )
            status = ReservationStatus.EXPIRED
        if status is ReservationStatus.PENDING:
            return 0
        args = (event_id, hold.reservation_id, hold.user_id, hold.seat_ids)
        if status is ReservationStatus.CONFIRMED:
            await self._holds.sell(*args)
        else:
            await self._holds.release(*args)
        return 1

    async def _record_expired(self, event_id: str, hold: ExpiredHold) -> bool:
        """Record the orphan as EXPIRED; False if its reservation was recorded after all."""
        now = utcnow()
        try:
            async with AsyncSession(self._engine) as session, session.begin():
                session.add(
                    Reservation(
                        id=hold.reservation_id,
                        event_id=event_id,
                        user_id=hold.user_id,
                        seat_ids=hold.seat_ids,
                        status=ReservationStatus.EXPIRED,
                        expires_at=now,
                        created_at=now,
                        updated_at=now,
                    )
                )
        except IntegrityError:
            # A commit slower than the whole hold: the next round settles it by its row.
            return False
        return True
