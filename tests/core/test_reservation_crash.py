"""A reservation process that dies between the Redis hold and the MySQL commit loses no seats:
the sweeper reaps the orphan hold once its hold key expired, and never undoes a confirmed sale."""

import asyncio
import random
import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import redis.asyncio as aioredis
from sqlalchemy import text
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncEngine
from sqlmodel import select
from sqlmodel.ext.asyncio.session import AsyncSession
from ticketing.common.ratelimit import RateRule
from ticketing.common.redis_keys import SaleKeys, held_sales_key
from ticketing.common.settings import CommonSettings
from ticketing.common.sqltypes import utcnow
from ticketing.common.tokens import Principal, issue_access_token, issue_admission_token
from ticketing.reservation.holds import SeatHolds
from ticketing.reservation.lifecycle import Trigger
from ticketing.reservation.models import (
    OutboxMessage,
    Reservation,
    ReservationStatus,
    Ticket,
    new_reservation_id,
)
from ticketing.reservation.orphans import OrphanReaper
from ticketing.reservation.service import ReservationService

from tests.core.factories import bearer
from tests.core.sale_kit import (
    Clock,
    count_tickets,
    eventually,
    make_sale,
    reservation_settings,
    seat_ids,
    seat_states,
)
from tests.service_processes import ServiceProcess, namespace_env

# Short holds, and no grace: the hold key expires with the hold, so a test waits seconds.
HOLD_TTL_SECONDS = 2


@pytest.fixture
def reaper(
    engine: AsyncEngine, redis_client: aioredis.Redis, settings: CommonSettings
) -> OrphanReaper:
    return OrphanReaper(engine, redis_client, settings.redis_key_prefix)


async def hold_then_crash(
    redis: aioredis.Redis, prefix: str, event_id: str, seats: list[str], ttl_ms: int = 300
) -> str:
    """Leave Redis as a process killed right after the Lua HOLD leaves it: the sale listed, the
    seats held, and no reservation row. Returns the reservation id."""
    reservation_id = new_reservation_id()
    await redis.sadd(held_sales_key(prefix), event_id)
    # Alice crashes many holds here: the purchase limit is not what these tests are about.
    await SeatHolds(redis, prefix).hold(
        event_id,
        reservation_id,
        "alice",
        seats,
        ttl_ms,
        max_seats_per_buyer=1000,
        rate=RateRule("holds", limit=1000, window_seconds=60),
    )
    return reservation_id


async def statuses(engine: AsyncEngine, event_id: str) -> dict[str, ReservationStatus]:
    async with AsyncSession(engine) as session:
        rows = await session.exec(select(Reservation).where(Reservation.event_id == event_id))
        return {row.id: row.status for row in rows.all()}


async def announced(engine: AsyncEngine) -> set[str]:
    """Reservations whose reservation.requested message was written (the real ones)."""
    async with AsyncSession(engine) as session:
        return set((await session.exec(select(OutboxMessage.key))).all())


def owners_without_a_live_row(
    states: dict[str, str], rows: dict[str, ReservationStatus]
) -> dict[str, str]:
    """Seats held by no PENDING reservation, or sold to no CONFIRMED one (each a lost seat)."""
    live = {"held": ReservationStatus.PENDING, "sold": ReservationStatus.CONFIRMED}
    lost = {}
    for seat, state in states.items():
        if state == "free":
            continue
        kind, _, reservation_id = state.partition(":")
        if rows.get(reservation_id) is not live[kind]:
            lost[seat] = state
    return lost


async def _reaped(reaper: OrphanReaper) -> bool:
    return await reaper.reap() > 0


async def _all_free(redis: aioredis.Redis, prefix: str, event: str) -> bool:
    return set((await seat_states(redis, prefix, event)).values()) == {"free"}


async def test_sweep_frees_seats_of_a_hold_never_recorded_once_its_hold_key_expired(
    reaper: OrphanReaper,
    engine: AsyncEngine,
    redis_client: aioredis.Redis,
    settings: CommonSettings,
) -> None:
    prefix = settings.redis_key_prefix
    event = await make_sale(redis_client, prefix, seats=3)
    orphan = await hold_then_crash(redis_client, prefix, event, ["A-1", "A-2"], ttl_ms=500)

    assert await reaper.reap() == 0  # the hold key is still alive: the hold may yet be recorded
    assert (await seat_states(redis_client, prefix, event))["A-1"] == f"held:{orphan}"

    await eventually(lambda: _reaped(reaper), within=10)

    assert await seat_states(redis_client, prefix, event) == {
        "A-1": "free",
        "A-2": "free",
        "A-3": "free",
    }
    async with AsyncSession(engine) as session:
        row = await session.get(Reservation, orphan)
    assert row is not None
    assert (row.status, row.user_id, row.seat_ids) == (
        ReservationStatus.EXPIRED,
        "alice",
        ["A-1", "A-2"],
    )
    assert await redis_client.zcard(SaleKeys(prefix, event).hold_deadlines) == 0
    assert await reaper.reap() == 0


async def test_commit_arriving_after_the_reaper_freed_the_seats_is_refused(
    reaper: OrphanReaper,
    engine: AsyncEngine,
    redis_client: aioredis.Redis,
    settings: CommonSettings,
) -> None:
    event = await make_sale(redis_client, settings.redis_key_prefix, seats=1)
    orphan = await hold_then_crash(redis_client, settings.redis_key_prefix, event, ["A-1"])
    await eventually(lambda: _reaped(reaper), within=10)

    late = Reservation(
        id=orphan,
        event_id=event,
        user_id="alice",
        seat_ids=["A-1"],
        status=ReservationStatus.PENDING,
        expires_at=utcnow(),
    )
    with pytest.raises(IntegrityError):
        async with AsyncSession(engine) as session, session.begin():
            session.add(late)


async def test_reaper_sells_the_seats_of_a_reservation_confirmed_just_before_a_crash(
    reaper: OrphanReaper,
    engine: AsyncEngine,
    redis_client: aioredis.Redis,
    settings: CommonSettings,
) -> None:
    service = ReservationService(
        engine,
        redis_client,
        reservation_settings(settings, default_hold_ttl_seconds=1, hold_key_grace_seconds=0),
    )
    event = await make_sale(redis_client, settings.redis_key_prefix, seats=2)
    reservation = await service.reserve("bob", event, ["A-1"])
    # What a process killed after the CONFIRMED commit and before the Lua SELL leaves behind.
    async with AsyncSession(engine) as session, session.begin():
        row = await session.get(Reservation, reservation.id, with_for_update=True)
        assert row is not None
        row.status = ReservationStatus.CONFIRMED
        session.add(Ticket(event_id=event, seat_id="A-1", reservation_id=row.id, user_id="bob"))

    await eventually(lambda: _reaped(reaper), within=10)

    assert await seat_states(redis_client, settings.redis_key_prefix, event) == {
        "A-1": f"sold:{reservation.id}",
        "A-2": "free",
    }


async def test_reaping_while_buyers_confirm_never_frees_a_confirmed_seat(
    reaper: OrphanReaper,
    engine: AsyncEngine,
    redis_client: aioredis.Redis,
    settings: CommonSettings,
) -> None:
    prefix = settings.redis_key_prefix
    clock = Clock()
    service = ReservationService(
        engine,
        redis_client,
        reservation_settings(settings, default_hold_ttl_seconds=1, hold_key_grace_seconds=0),
        clock,
    )
    event = await make_sale(redis_client, prefix, seats=20)
    seats = seat_ids(20)
    paid = [await service.reserve(f"buyer-{n}", event, [seat]) for n, seat in enumerate(seats[:10])]
    orphans = [
        await hold_then_crash(redis_client, prefix, event, [seat], ttl_ms=1000)
        for seat in seats[10:]
    ]
    # The service's clock steps back: the hold keys expire (Redis's clock) while the reservations
    # are still payable, so confirmations land before, during and after the reaping.
    clock.advance(-30)

    confirmed = asyncio.Event()

    async def confirm(reservation: Reservation) -> None:
        await asyncio.sleep(random.uniform(0, 2))
        await service.apply(reservation.id, Trigger.PAID)

    async def keep_reaping() -> None:
        while not confirmed.is_set():
            await reaper.reap()
            await asyncio.sleep(0.02)

    reaping = asyncio.create_task(keep_reaping())
    await asyncio.gather(*(confirm(r) for r in paid))
    confirmed.set()
    await reaping
    await reaper.reap()

    states = await seat_states(redis_client, prefix, event)
    assert {seat: states[seat] for seat in seats[:10]} == {
        r.seat_ids[0]: f"sold:{r.id}" for r in paid
    }
    assert {states[seat] for seat in seats[10:]} == {"free"}
    assert await count_tickets(engine, event) == 10
    rows = await statuses(engine, event)
    assert {rows[orphan] for orphan in orphans} == {ReservationStatus.EXPIRED}
    assert owners_without_a_live_row(states, rows) == {}


# The real process, killed.


def crash_env(settings: CommonSettings) -> dict[str, str]:
    return {
        **namespace_env(settings),
        "TICKETING_DEFAULT_HOLD_TTL_SECONDS": str(HOLD_TTL_SECONDS),
        "TICKETING_HOLD_KEY_GRACE_SECONDS": "0",
        "TICKETING_SWEEP_INTERVAL_SECONDS": "0.2",
    }


@pytest.fixture
def processes(migrated_database: str) -> Iterator[list[ServiceProcess]]:
    """Reservation processes for the test; any still running are stopped at its end."""
    started: list[ServiceProcess] = []
    try:
        yield started
    finally:
        for service in started:
            service.process.stop()


async def start_reservation(
    processes: list[ServiceProcess], settings: CommonSettings, log_dir: Path
) -> ServiceProcess:
    """`python -m ticketing reservation` on a free port, once it answers /readyz."""
    service = ServiceProcess("reservation", crash_env(settings), log_dir)
    processes.append(service)
    await asyncio.to_thread(service.restart)
    return service


def buyer_headers(settings: CommonSettings, event_id: str) -> dict[str, str]:
    user_id = uuid.uuid4().hex
    token = issue_access_token(settings, Principal(user_id, f"{user_id}@example.org", ()))
    admission, _ = issue_admission_token(settings, user_id, event_id, ttl_seconds=300)
    return {**bearer(token), "X-Admission-Token": admission}


async def reserve(
    client: httpx.AsyncClient, settings: CommonSettings, event: str, seats: list[str]
) -> httpx.Response | None:
    """POST a reservation; None when the process died before answering."""
    try:
        return await client.post(
            f"/events/{event}/reservations",
            json={"seat_ids": seats},
            headers=buyer_headers(settings, event),
        )
    except httpx.TransportError:
        return None


async def test_seats_held_by_a_process_killed_before_its_commit_return_to_sale(
    processes: list[ServiceProcess],
    engine: AsyncEngine,
    redis_client: aioredis.Redis,
    settings: CommonSettings,
    tmp_path: Path,
) -> None:
    prefix = settings.redis_key_prefix
    first = await start_reservation(processes, settings, tmp_path / "first")
    client = httpx.AsyncClient(base_url=first.base_url, timeout=30)
    event = await make_sale(redis_client, prefix, seats=24)
    seats = seat_ids(24)
    recorded = await reserve(client, settings, event, seats[:2])
    assert recorded is not None and recorded.status_code == 201, recorded
    async with engine.connect() as blocker:
        # Every commit of a reservation now waits on the lock: each request gets as far as the
        # Redis hold and no further, which is where the process is killed.
        await blocker.execute(text("LOCK TABLES reservations WRITE"))
        requests = [
            asyncio.create_task(reserve(client, settings, event, seats[n : n + 2]))
            for n in range(2, 24, 2)
        ]

        async def all_held() -> bool:
            states = await seat_states(redis_client, prefix, event)
            return all(state.startswith("held:") for state in states.values())

        await eventually(all_held, within=30)
        await asyncio.to_thread(first.process.kill)
        assert set(await asyncio.gather(*requests)) == {None}
        await blocker.execute(text("UNLOCK TABLES"))
    await client.aclose()
    killed_holds = await seat_states(redis_client, prefix, event)
    orphans = {state.removeprefix("held:") for state in killed_holds.values()} - {
        recorded.json()["id"]
    }
    assert len(orphans) == 11
    assert set(await statuses(engine, event)) == {recorded.json()["id"]}

    await start_reservation(processes, settings, tmp_path / "restarted")

    await eventually(lambda: _all_free(redis_client, prefix, event), within=HOLD_TTL_SECONDS + 30)
    rows = await statuses(engine, event)
    assert {rows[orphan] for orphan in orphans} == {ReservationStatus.EXPIRED}
    assert rows[recorded.json()["id"]] is ReservationStatus.EXPIRED
    # The reaped reservations were never announced, so nobody is ever charged for them.
    assert orphans.isdisjoint(await announced(engine))


async def test_process_killed_under_load_leaves_every_seat_free_or_owned_by_a_live_reservation(
    processes: list[ServiceProcess],
    engine: AsyncEngine,
    redis_client: aioredis.Redis,
    settings: CommonSettings,
    tmp_path: Path,
) -> None:
    prefix = settings.redis_key_prefix
    first = await start_reservation(processes, settings, tmp_path / "first")
    client = httpx.AsyncClient(base_url=first.base_url, timeout=30)
    event = await make_sale(redis_client, prefix, seats=40)
    seats = seat_ids(40)
    rush = [
        asyncio.create_task(reserve(client, settings, event, random.sample(seats, 2)))
        for _ in range(150)
    ]

    async def some_held() -> bool:
        states = await seat_states(redis_client, prefix, event)
        return sum(state != "free" for state in states.values()) >= 6

    await eventually(some_held, within=30)
    await asyncio.to_thread(first.process.kill)
    await asyncio.gather(*rush)
    await client.aclose()

    await start_reservation(processes, settings, tmp_path / "restarted")

    async def settled() -> bool:
        states = await seat_states(redis_client, prefix, event)
        return owners_without_a_live_row(states, await statuses(engine, event)) == {}

    # After the hold TTL and a sweep, no seat is held by a reservation that has no row.
    await asyncio.sleep(HOLD_TTL_SECONDS)
    await eventually(settled, within=30)
    # Without a payment service nothing is confirmed: every hold expires or is reaped.
    await eventually(lambda: _all_free(redis_client, prefix, event), within=30)
