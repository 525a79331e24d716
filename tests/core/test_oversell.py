"""No seat is ever sold twice: a crowd racing for the seats, random histories, and the
tickets table refusing what Redis would have allowed."""

import asyncio
import contextlib
import time
from collections import Counter
from collections.abc import AsyncIterator

import pytest
import redis.asyncio as aioredis
from hypothesis import HealthCheck, given
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st
from sqlalchemy.ext.asyncio import AsyncEngine
from sqlmodel.ext.asyncio.session import AsyncSession
from ticketing.common.redis_keys import SaleKeys
from ticketing.common.resources import open_database
from ticketing.common.sale_config import DEFAULT_MAX_SEATS_PER_BUYER
from ticketing.common.settings import CommonSettings
from ticketing.reservation.holds import PurchaseLimitReached, SeatsRefused
from ticketing.reservation.lifecycle import TransitionRefused, Trigger
from ticketing.reservation.models import Reservation, ReservationStatus, Ticket
from ticketing.reservation.service import ReservationService

from tests.core.sale_kit import (
    Clock,
    make_sale,
    reservation_settings,
    seat_ids,
    seat_states,
    tickets_by_seat,
)

SEATS = 1_000
BUYERS = 5_000


@pytest.fixture
async def engine(migrated_database: str) -> AsyncIterator[AsyncEngine]:
    async with open_database(migrated_database, pool_size=20) as engine:
        yield engine


@pytest.fixture
async def pooled_redis(settings: CommonSettings) -> AsyncIterator[aioredis.Redis]:
    """A bounded pool, as a service has: 5,000 callers share 100 connections."""
    pool = aioredis.BlockingConnectionPool.from_url(
        settings.redis_url, max_connections=100, timeout=30
    )
    client = aioredis.Redis(connection_pool=pool)
    try:
        yield client
    finally:
        await client.aclose()
        await pool.aclose()


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def service(
    engine: AsyncEngine, pooled_redis: aioredis.Redis, settings: CommonSettings, clock: Clock
) -> ReservationService:
    return ReservationService(engine, pooled_redis, reservation_settings(settings), clock)


@pytest.mark.slow
async def test_five_thousand_buyers_racing_for_a_thousand_seats_hold_each_seat_once(
    service: ReservationService,
    pooled_redis: aioredis.Redis,
    settings: CommonSettings,
    engine: AsyncEngine,
) -> None:
    """The hold path itself (service function, not HTTP: 5,000 HTTP requests through one
    process on 2 shared cores would measure the web stack, not the race)."""
    event = await make_sale(pooled_redis, settings.redis_key_prefix, seats=SEATS)
    seats = seat_ids(SEATS)

    async def buy(buyer: int) -> str:
        # Five buyers want each seat, and they all start at once.
        try:
            reservation = await service.reserve(f"buyer-{buyer}", event, [seats[buyer % SEATS]])
        except SeatsRefused as refused:
            return refused.reason
        return f"won:{reservation.id}"

    started = time.perf_counter()
    outcomes = await asyncio.gather(*(buy(n) for n in range(BUYERS)))
    elapsed = time.perf_counter() - started

    winners = [o for o in outcomes if o.startswith("won:")]
    losers = Counter(o.split(":")[0] for o in outcomes if not o.startswith("won:"))
    assert len(winners) == SEATS
    assert losers == {"seats already held or sold": BUYERS - SEATS}
    states = await seat_states(pooled_redis, settings.redis_key_prefix, event)
    holders = Counter(state for state in states.values())
    assert len(states) == SEATS
    assert all(state.startswith("held:") for state in states.values())
    assert all(count == 1 for count in holders.values())
    assert {f"held:{w.removeprefix('won:')}" for w in winners} == set(holders)

    for winner in winners:
        await service.apply(winner.removeprefix("won:"), Trigger.PAID)
    sold = await tickets_by_seat(engine, event)
    assert len(sold) == SEATS
    assert all(len(owners) == 1 for owners in sold.values())
    print(f"\n{BUYERS} buyers, {SEATS} seats: holds decided in {elapsed:.2f}s")


async def test_tickets_table_refuses_a_second_sale_that_redis_let_through(
    service: ReservationService,
    pooled_redis: aioredis.Redis,
    settings: CommonSettings,
    engine: AsyncEngine,
) -> None:
    event = await make_sale(pooled_redis, settings.redis_key_prefix, seats=2)
    reservation = await service.reserve("alice", event, ["A-1", "A-2"])
    async with AsyncSession(engine) as session, session.begin():
        # A ticket Redis never heard of, as if its state had been lost.
        session.add(Ticket(event_id=event, seat_id="A-2", reservation_id="other", user_id="bob"))

    outcome = await service.apply(reservation.id, Trigger.PAID)

    assert outcome.status is ReservationStatus.FAILED
    assert outcome.refund_requested
    assert await tickets_by_seat(engine, event) == {"A-2": ["other"]}
    states = await seat_states(pooled_redis, settings.redis_key_prefix, event)
    assert states == {"A-1": "free", "A-2": "free"}


SMALL_SALE = seat_ids(7)
FANS = ["fan-1", "fan-2"]
operations = st.one_of(
    st.tuples(
        st.sampled_from(FANS),
        st.lists(st.sampled_from(SMALL_SALE), min_size=1, max_size=3, unique=True),
    ),
    st.tuples(st.sampled_from(["pay", "fail", "cancel"]), st.integers(0, 20)),
    st.tuples(st.just("expire"), st.just(0)),
)


@pytest.mark.slow
@hypothesis_settings(
    max_examples=25,
    deadline=None,
    # Each example works on its own new event, so the shared fixtures carry no state over.
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(history=st.lists(operations, max_size=20))
async def test_no_history_of_holds_payments_cancels_and_expiries_sells_a_seat_twice(
    history: list[tuple[str, object]],
    service: ReservationService,
    pooled_redis: aioredis.Redis,
    settings: CommonSettings,
    engine: AsyncEngine,
    clock: Clock,
) -> None:
    event = await make_sale(pooled_redis, settings.redis_key_prefix, seats=len(SMALL_SALE))
    made: list[str] = []
    owner: dict[str, str] = {}
    for action, argument in history:
        if action in FANS:
            assert isinstance(argument, list)
            with contextlib.suppress(SeatsRefused, PurchaseLimitReached):
                reservation_id = (await service.reserve(action, event, argument)).id
                made.append(reservation_id)
                owner[reservation_id] = action
        elif action == "expire":
            clock.advance(301)
            await service.expire_due()
        elif made:
            assert isinstance(argument, int)
            target = made[argument % len(made)]
            if action == "cancel":
                with contextlib.suppress(TransitionRefused):
                    await service.cancel(owner[target], target)
            else:
                trigger = Trigger.PAID if action == "pay" else Trigger.PAYMENT_FAILED
                # Every payment outcome is delivered twice.
                await service.apply(target, trigger)
                await service.apply(target, trigger)

    sold = await tickets_by_seat(engine, event)
    assert all(len(owners) == 1 for owners in sold.values())
    states = await seat_states(pooled_redis, settings.redis_key_prefix, event)
    sold_in_redis = {
        seat: s.removeprefix("sold:") for seat, s in states.items() if s.startswith("sold:")
    }
    assert sold_in_redis == {seat: owners[0] for seat, owners in sold.items()}
    async with AsyncSession(engine) as session:
        reservations = {r: await session.get(Reservation, r) for r in made}
    for reservation_id, reservation in reservations.items():
        assert reservation is not None
        holding = {seat for seat, s in states.items() if s.endswith(f":{reservation_id}")}
        if reservation.status is ReservationStatus.CONFIRMED:
            assert holding == set(reservation.seat_ids)
        elif reservation.status is not ReservationStatus.PENDING:
            assert holding == set()
    # Each fan's count against the purchase limit is exactly the seats they hold or bought.
    counted = await pooled_redis.hgetall(SaleKeys(settings.redis_key_prefix, event).buyer_seats)
    theirs = Counter(owner[state.split(":", 1)[1]] for state in states.values() if state != "free")
    assert {fan.decode(): int(n) for fan, n in counted.items()} == dict(theirs)
    assert all(n <= DEFAULT_MAX_SEATS_PER_BUYER for n in theirs.values())
