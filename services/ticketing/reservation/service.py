"""What the reservation service does: hold seats and record the reservation, then move it
through its life (paid, failed, expired, cancelled) with Redis following the database.

Every status change runs under a row lock in MySQL first; Redis is updated after the commit and
only in ways that are safe to repeat, so a crash between the two is repaired by the redelivery.
"""

import asyncio
import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy.exc import IntegrityError, SQLAlchemyError
from sqlalchemy.ext.asyncio import AsyncEngine
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from ticketing.common.coalesce import Coalescer
from ticketing.common.errors import PermanentError, TemporaryError
from ticketing.common.prepared import driver_transaction
from ticketing.common.redis_client import REDIS_UNAVAILABLE, RedisClient
from ticketing.common.redis_keys import held_sales_key
from ticketing.common.sale_config import DEFAULT_MAX_SEATS_PER_BUYER, read_sale_config
from ticketing.common.sqltypes import utcnow
from ticketing.reservation import messages
from ticketing.reservation.changes import ReservationChanges
from ticketing.reservation.holds import SeatHolds, SeatSale
from ticketing.reservation.lifecycle import Effect, Step, Trigger, next_step
from ticketing.reservation.models import (
    Reservation,
    ReservationStatus,
    new_reservation_id,
)
from ticketing.reservation.settings import ReservationSettings
from ticketing.reservation.statements import ReservationStatements

log = logging.getLogger(__name__)

Clock = Callable[[], datetime]

SALE_TERMS_CACHE_SECONDS = 1.0


@dataclass(frozen=True)
class HoldTerms:
    """What the sale's runtime config says about holds: how long, and how many seats a buyer."""

    ttl_seconds: int
    max_seats_per_buyer: int


# A reservation to move, and the trigger that moves it.
Change = tuple[str, Trigger]
# A new reservation's row and its outbox row, as written.
Record = tuple[dict[str, Any], dict[str, Any]]

# The most new reservations one transaction writes: a burst of holds is written in a few
# transactions, none holding many locks.
MAX_RECORD_BATCH = 100


@dataclass
class Moved:
    """A reservation as a committed step left it, and the step (with its effects to carry out)."""

    reservation: Reservation
    step: Step


class ReservationNotFound(PermanentError):
    """No such reservation, or not the caller's (the two are not told apart)."""


class ReservationService:
    def __init__(
        self,
        engine: AsyncEngine,
        redis: RedisClient,
        settings: ReservationSettings,
        clock: Clock = utcnow,
    ) -> None:
        self._engine = engine
        self._redis = redis
        self._settings = settings
        self._holds = SeatHolds(redis, settings.redis_key_prefix)
        self._sql = ReservationStatements(engine.dialect)
        self._records = Coalescer(self._record_many, MAX_RECORD_BATCH)
        self._clock = clock
        self._terms: dict[str, tuple[float, HoldTerms]] = {}
        self._config_lock = asyncio.Lock()
        # Set when an outbox row was committed, so the relay publishes it without waiting a poll.
        self.outbox_written = asyncio.Event()
        self.changes = ReservationChanges()

    async def reserve(self, user_id: str, event_id: str, seat_ids: list[str]) -> Reservation:
        """Hold the seats (all or none) and record a PENDING reservation with its outbox row."""
        terms = await self._hold_terms(event_id)
        reservation_id = new_reservation_id()
        expires_at = self._clock() + timedelta(seconds=terms.ttl_seconds)
        hold_ms = (terms.ttl_seconds + self._settings.hold_key_grace_seconds) * 1000
        await self._holds.hold(
            event_id,
            reservation_id,
            user_id,
            seat_ids,
            hold_ms,
            max_seats_per_buyer=terms.max_seats_per_buyer,
            rate=self._settings.hold_rate,
        )
        # Built only for the winners of the hold: most callers in a rush are refused above.
        reservation = Reservation(
            id=reservation_id,
            event_id=event_id,
            user_id=user_id,
            seat_ids=seat_ids,
            status=ReservationStatus.PENDING,
            expires_at=expires_at,
        )
        outbox = messages.requested(reservation)
        refused = await self._records.submit((reservation.model_dump(), outbox.model_dump()))
        if refused is not None:
            await self._holds.release(event_id, reservation_id, user_id, seat_ids)
            raise TemporaryError("could not record the reservation, try again") from refused
        self.outbox_written.set()
        log.info(
            "seats held",
            extra={"reservation_id": reservation.id, "event_id": event_id, "seats": seat_ids},
        )
        return reservation

    async def _record_many(self, records: Sequence[Record]) -> list[SQLAlchemyError | None]:
        """Write each new reservation with its outbox row; each one's failure, or None. The
        reservations held at the same time share one transaction: one multi-row INSERT into each
        table, as prepared statements on the driver (the ORM's unit of work, then SQLAlchemy's
        execution, cost more CPU than the statements). If that transaction fails, each is written
        on its own, so one the database refuses fails alone."""
        if len(records) > 1:
            try:
                await self._record(records)
            except SQLAlchemyError:
                pass
            else:
                return [None] * len(records)
        failures: list[SQLAlchemyError | None] = []
        for record in records:
            try:
                await self._record([record])
            except SQLAlchemyError as exc:
                failures.append(exc)
            else:
                failures.append(None)
        return failures

    async def _record(self, records: Sequence[Record]) -> None:
        async with driver_transaction(self._engine) as transaction:
            await transaction.insert_many(self._sql.insert_reservation, [r for r, _ in records])
            await transaction.insert_many(self._sql.insert_outbox, [o for _, o in records])

    async def get(self, user_id: str, reservation_id: str) -> Reservation:
        # A Core SELECT, not `session.get`: buyers poll this while they wait for the payment,
        # and a session's identity map and row states cost more CPU than the query.
        try:
            async with self._engine.connect() as conn:
                row = (
                    await conn.execute(
                        select(Reservation).where(col(Reservation.id) == reservation_id)
                    )
                ).first()
        except SQLAlchemyError as exc:
            raise TemporaryError("reservations are unavailable, try again") from exc
        if row is None or row.user_id != user_id:
            raise ReservationNotFound("reservation not found")
        return Reservation.model_validate(row._mapping)

    async def settled(self, user_id: str, reservation_id: str, wait_seconds: float) -> Reservation:
        """The reservation, once it is no longer PENDING or `wait_seconds` have passed. A change
        applied in this process answers at once; one applied by another replica is read at the
        next recheck (`reservation_wait_recheck_seconds`)."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + wait_seconds
        reservation = await self.get(user_id, reservation_id)
        while (
            reservation.status is ReservationStatus.PENDING and (left := deadline - loop.time()) > 0
        ):
            await self.changes.wait(
                reservation_id, min(left, self._settings.reservation_wait_recheck_seconds)
            )
            reservation = await self.get(user_id, reservation_id)
        return reservation

    async def cancel(self, user_id: str, reservation_id: str) -> Reservation:
        await self.get(user_id, reservation_id)
        try:
            return await self.apply(reservation_id, Trigger.CANCEL)
        except SQLAlchemyError as exc:
            raise TemporaryError("reservations are unavailable, try again") from exc

    async def expire_due(self, limit: int = 100) -> int:
        """Expire PENDING reservations whose hold ran out and put their seats back on sale."""
        async with AsyncSession(self._engine) as session:
            due = (
                await session.exec(
                    select(Reservation.id)
                    .where(Reservation.status == ReservationStatus.PENDING)
                    .where(col(Reservation.expires_at) <= self._clock())
                    .limit(limit)
                )
            ).all()
        for reservation_id in due:
            await self.apply(reservation_id, Trigger.EXPIRE)
        return len(due)

    async def apply(self, reservation_id: str, trigger: Trigger) -> Reservation:
        """Move the reservation by `trigger` and carry out the step's effects; safe to repeat."""
        try:
            (moved,) = await self._commit_steps([(reservation_id, trigger)])
        except IntegrityError:
            if trigger is not Trigger.PAID:
                raise
            log.error(
                "a seat of a paid reservation is already sold; refunding",
                extra={"reservation_id": reservation_id},
            )
            (moved,) = await self._commit_steps([(reservation_id, Trigger.SEATS_GONE)])
        if isinstance(moved, Exception):
            raise moved
        if failures := await self._carry_out([moved]):
            raise failures[reservation_id]
        return moved.reservation

    async def apply_many(self, changes: Sequence[Change]) -> list[Reservation | Exception]:
        """`apply` for many reservations at once, each its result or the error `apply` would
        have raised: one transaction locks them all, issues every ticket with one INSERT and moves
        the reservations of each new status with one UPDATE, and one script a sale sells their
        seats in Redis. If that transaction fails (a seat already sold, a deadlock), every change
        goes through `apply` alone, in order, so one change cannot fail the others."""
        if len(changes) == 1 or len({reservation_id for reservation_id, _ in changes}) < len(
            changes
        ):
            return [await self._apply_or_error(*change) for change in changes]
        try:
            moved = await self._commit_steps(changes)
        except SQLAlchemyError as exc:
            log.warning(
                "a batch of reservation changes failed together; applying each alone",
                extra={"changes": len(changes), "error": repr(exc)},
            )
            return [await self._apply_or_error(*change) for change in changes]
        failures = await self._carry_out([item for item in moved if isinstance(item, Moved)])
        return [
            item
            if isinstance(item, Exception)
            else failures.get(item.reservation.id, item.reservation)
            for item in moved
        ]

    async def _apply_or_error(
        self, reservation_id: str, trigger: Trigger
    ) -> Reservation | Exception:
        try:
            return await self.apply(reservation_id, trigger)
        except Exception as exc:  # noqa: BLE001 - the caller gets it as this change's result
            return exc

    async def _commit_steps(self, changes: Sequence[Change]) -> list[Moved | Exception]:
        """One transaction moving each reservation by its trigger: each one's new state and step,
        or the error that refused it (the others go on)."""
        # Prepared statements on the driver rather than an ORM session or Core: this runs for
        # every confirmation, and the session's machinery, then SQLAlchemy's execution, cost more
        # CPU than the SQL.
        ids = [reservation_id for reservation_id, _ in changes]
        moved: list[Moved | Exception] = []
        tickets: list[dict[str, object]] = []
        refunds: list[dict[str, object]] = []
        updates: dict[tuple[ReservationStatus, bool], list[str]] = {}
        async with driver_transaction(self._engine) as transaction:
            rows = await transaction.all(*self._sql.lock_reservations.over(ids))
            found = {row["id"]: Reservation.model_validate(row) for row in rows}
            now = self._clock()
            for reservation_id, trigger in changes:
                reservation = found.get(reservation_id)
                if reservation is None:
                    moved.append(ReservationNotFound(f"reservation {reservation_id} not found"))
                    continue
                try:
                    step = next_step(
                        reservation.status, trigger, hold_expired=now >= reservation.expires_at
                    )
                except PermanentError as refused:
                    moved.append(refused)
                    continue
                moved.append(Moved(reservation, step))
                changed = step.status is not reservation.status
                if changed:
                    log.info(
                        "reservation %s -> %s",
                        reservation.status.value,
                        step.status.value,
                        extra={"reservation_id": reservation_id, "trigger": trigger.value},
                    )
                    reservation.status = step.status
                    reservation.updated_at = now
                if Effect.ISSUE_TICKETS in step.effects:
                    tickets.extend(_tickets(reservation))
                if Effect.REFUND in step.effects and not reservation.refund_requested:
                    reservation.refund_requested = True
                    changed = True
                    reason = f"reservation {step.status}"
                    refunds.append(messages.refund_requested(reservation, reason).model_dump())
                if changed:
                    key = (reservation.status, reservation.refund_requested)
                    updates.setdefault(key, []).append(reservation_id)
            if tickets:
                # In one order for every transaction: two inserting the same seats (a seat sold
                # twice) then wait for each other instead of deadlocking.
                tickets.sort(key=lambda ticket: (ticket["event_id"], ticket["seat_id"]))
                await transaction.insert_many(self._sql.insert_tickets, tickets)
            if refunds:
                await transaction.insert_many(self._sql.insert_outbox, refunds)
            for (status, refund_requested), updated in updates.items():
                await transaction.execute(
                    *self._sql.update_reservations.over(
                        updated,
                        {"status": status, "updated_at": now, "refund_requested": refund_requested},
                    )
                )
        if refunds:
            self.outbox_written.set()
        return moved

    async def _carry_out(self, moved: Sequence[Moved]) -> dict[str, Exception]:
        """Bring Redis in line with the committed steps (one script a sale sells the seats of every
        reservation sold, then the released ones go back on sale one by one), then wake whoever
        waits for these reservations. The failures, by reservation id."""
        failures: dict[str, Exception] = {}
        sales: dict[str, list[SeatSale]] = {}
        for item in moved:
            reservation, effects = item.reservation, item.step.effects
            if Effect.SELL in effects:
                sale = SeatSale(
                    reservation.id,
                    reservation.user_id,
                    reservation.seat_ids,
                    end_session=Effect.END_SESSION in effects,
                )
                sales.setdefault(reservation.event_id, []).append(sale)
        for event_id, sold in sales.items():
            try:
                surprises = await self._holds.sell_many(event_id, sold)
            except TemporaryError as exc:
                failures.update((sale.reservation_id, exc) for sale in sold)
                continue
            for sale, seats in zip(sold, surprises, strict=True):
                if seats:
                    log.error(
                        "sold seats the reservation did not hold in Redis",
                        extra={"reservation_id": sale.reservation_id, "seats": seats},
                    )
        for item in moved:
            reservation = item.reservation
            if Effect.RELEASE in item.step.effects:
                try:
                    await self._holds.release(
                        reservation.event_id,
                        reservation.id,
                        reservation.user_id,
                        reservation.seat_ids,
                    )
                except TemporaryError as exc:
                    failures[reservation.id] = exc
        for item in moved:
            self.changes.announce(item.reservation.id)
        return failures

    async def _hold_terms(self, event_id: str) -> HoldTerms:
        """The sale's hold terms, read at most once a second per sale: a rush of thousands of
        requests per second then costs one Redis round trip each, and a change lands within a
        second. The lock makes a rush that finds the cache empty wait for one read, not make
        thousands."""
        if (terms := self._cached_terms(event_id)) is not None:
            return terms
        async with self._config_lock:
            if (terms := self._cached_terms(event_id)) is not None:
                return terms
            try:
                config = await read_sale_config(
                    self._redis, self._settings.redis_key_prefix, event_id
                )
                # The orphan reaper visits only the sales listed here. Listing the sale here, once
                # a second and before any hold in it, keeps the hold itself one round trip.
                await self._redis.sadd(held_sales_key(self._settings.redis_key_prefix), event_id)
            except REDIS_UNAVAILABLE as exc:
                raise TemporaryError("seat inventory is unavailable, try again") from exc
            terms = (
                HoldTerms(config.hold_ttl_seconds, config.max_seats_per_buyer)
                if config
                else HoldTerms(self._settings.default_hold_ttl_seconds, DEFAULT_MAX_SEATS_PER_BUYER)
            )
            self._terms[event_id] = (time.monotonic(), terms)
            return terms

    def _cached_terms(self, event_id: str) -> HoldTerms | None:
        cached = self._terms.get(event_id)
        if cached and time.monotonic() - cached[0] < SALE_TERMS_CACHE_SECONDS:
            return cached[1]
        return None


def _tickets(reservation: Reservation) -> list[dict[str, object]]:
    """The ticket rows of a confirmed reservation. Plain rows, not Ticket instances: a table
    model's constructor sets up ORM state that an INSERT never reads (1.5 % of the process's CPU
    in py-spy)."""
    issued_at = utcnow()
    return [
        {
            "event_id": reservation.event_id,
            "seat_id": seat_id,
            "reservation_id": reservation.id,
            "user_id": reservation.user_id,
            "issued_at": issued_at,
        }
        for seat_id in reservation.seat_ids
    ]
