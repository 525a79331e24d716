"""The reservation's life on the real servers: holds, confirmation, expiry, cancellation, refunds."""

import asyncio

import pytest
import redis.asyncio as aioredis
from sqlalchemy.ext.asyncio import AsyncEngine
from sqlmodel import select
from sqlmodel.ext.asyncio.session import AsyncSession
from ticketing.common.errors import TemporaryError
from ticketing.common.redis_keys import SaleKeys
from ticketing.common.sale_config import SaleConfig, write_sale_config
from ticketing.common.settings import CommonSettings
from ticketing.common.sqltypes import utcnow
from ticketing.common.topics import RESERVATION_REFUND_REQUESTED
from ticketing.reservation.holds import EventNotOnSale, SeatsTaken, UnknownSeats
from ticketing.reservation.lifecycle import TransitionRefused, Trigger
from ticketing.reservation.models import OutboxMessage, Reservation, ReservationStatus, Ticket
from ticketing.reservation.service import ReservationNotFound, ReservationService

from tests.core.sale_kit import (
    Clock,
    count_tickets,
    make_sale,
    reservation_settings,
    seat_states,
    tickets_by_seat,
)


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def service(
    engine: AsyncEngine, redis_client: aioredis.Redis, settings: CommonSettings, clock: Clock
) -> ReservationService:
    return ReservationService(engine, redis_client, reservation_settings(settings), clock)


async def outbox(engine: AsyncEngine) -> list[OutboxMessage]:
    async with AsyncSession(engine) as session:
        return list((await session.exec(select(OutboxMessage))).all())


async def refunded(engine: AsyncEngine) -> list[str]:
    """The reservations whose refund the outbox holds, in the order they were written."""
    return [m.key for m in await outbox(engine) if m.topic == RESERVATION_REFUND_REQUESTED]


async def test_hold_marks_seats_held_and_records_pending_reservation_with_outbox_row(
    service: ReservationService,
    redis_client: aioredis.Redis,
    settings: CommonSettings,
    engine: AsyncEngine,
) -> None:
    event = await make_sale(redis_client, settings.redis_key_prefix, seats=4)
    reservation = await service.reserve("alice", event, ["A-1", "A-2"])

    assert reservation.status is ReservationStatus.PENDING
    states = await seat_states(redis_client, settings.redis_key_prefix, event)
    assert states == {
        "A-1": f"held:{reservation.id}",
        "A-2": f"held:{reservation.id}",
        "A-3": "free",
        "A-4": "free",
    }
    hold_ttl = await redis_client.pttl(
        SaleKeys(settings.redis_key_prefix, event).hold(reservation.id)
    )
    assert hold_ttl > 300_000  # the default hold plus the grace the sweeper works within
    [row] = await outbox(engine)
    assert (row.topic, row.key, row.sent_at) == ("reservation.requested", reservation.id, None)


async def test_hold_ttl_comes_from_the_sales_runtime_config(
    service: ReservationService, redis_client: aioredis.Redis, settings: CommonSettings
) -> None:
    event = await make_sale(redis_client, settings.redis_key_prefix)
    opens = utcnow()
    config = SaleConfig(
        event_id=event,
        tps=10,
        max_active=10,
        hold_ttl_seconds=42,
        opens_at=opens,
        closes_at=opens.replace(year=opens.year + 1),
    )
    await write_sale_config(redis_client, settings.redis_key_prefix, config)

    reservation = await service.reserve("alice", event, ["A-1"])

    assert 41 <= (reservation.expires_at - utcnow()).total_seconds() <= 42


async def test_hold_is_all_or_none_when_one_seat_is_taken(
    service: ReservationService, redis_client: aioredis.Redis, settings: CommonSettings
) -> None:
    event = await make_sale(redis_client, settings.redis_key_prefix, seats=3)
    first = await service.reserve("alice", event, ["A-2"])

    with pytest.raises(SeatsTaken) as refused:
        await service.reserve("bob", event, ["A-1", "A-2", "A-3"])

    assert refused.value.seat_ids == ["A-2"]
    states = await seat_states(redis_client, settings.redis_key_prefix, event)
    assert states == {"A-1": "free", "A-2": f"held:{first.id}", "A-3": "free"}


async def test_hold_names_unknown_seats_and_refuses_an_event_without_seats(
    service: ReservationService, redis_client: aioredis.Redis, settings: CommonSettings
) -> None:
    event = await make_sale(redis_client, settings.redis_key_prefix, seats=2)
    with pytest.raises(UnknownSeats) as unknown:
        await service.reserve("alice", event, ["A-1", "Z-9"])
    assert unknown.value.seat_ids == ["Z-9"]
    with pytest.raises(EventNotOnSale):
        await service.reserve("alice", "no-such-event", ["A-1"])
    assert set((await seat_states(redis_client, settings.redis_key_prefix, event)).values()) == {
        "free"
    }


async def test_failed_database_write_releases_the_hold(
    service: ReservationService, redis_client: aioredis.Redis, settings: CommonSettings
) -> None:
    event = await make_sale(redis_client, settings.redis_key_prefix, seats=2)
    # MariaDB's strict mode refuses a user id longer than its column: the insert fails.
    with pytest.raises(TemporaryError):
        await service.reserve("u" * 100, event, ["A-1"])
    assert (await seat_states(redis_client, settings.redis_key_prefix, event))["A-1"] == "free"


async def test_payment_confirms_issues_tickets_and_sells_seats_once(
    service: ReservationService,
    redis_client: aioredis.Redis,
    settings: CommonSettings,
    engine: AsyncEngine,
) -> None:
    event = await make_sale(redis_client, settings.redis_key_prefix, seats=2)
    reservation = await service.reserve("alice", event, ["A-1", "A-2"])

    confirmed = await service.apply(reservation.id, Trigger.PAID)
    again = await service.apply(reservation.id, Trigger.PAID)

    assert confirmed.status is again.status is ReservationStatus.CONFIRMED
    assert await count_tickets(engine, event) == 2
    states = await seat_states(redis_client, settings.redis_key_prefix, event)
    assert states == {"A-1": f"sold:{reservation.id}", "A-2": f"sold:{reservation.id}"}
    late_failure = await service.apply(reservation.id, Trigger.PAYMENT_FAILED)
    assert late_failure.status is ReservationStatus.CONFIRMED


async def test_failed_payment_releases_the_seats(
    service: ReservationService, redis_client: aioredis.Redis, settings: CommonSettings
) -> None:
    event = await make_sale(redis_client, settings.redis_key_prefix, seats=1)
    reservation = await service.reserve("alice", event, ["A-1"])

    failed = await service.apply(reservation.id, Trigger.PAYMENT_FAILED)

    assert failed.status is ReservationStatus.FAILED
    assert await seat_states(redis_client, settings.redis_key_prefix, event) == {"A-1": "free"}


async def test_expired_hold_returns_seats_to_sale_and_a_late_payment_is_refunded(
    service: ReservationService,
    redis_client: aioredis.Redis,
    settings: CommonSettings,
    engine: AsyncEngine,
    clock: Clock,
) -> None:
    event = await make_sale(redis_client, settings.redis_key_prefix, seats=1)
    reservation = await service.reserve("alice", event, ["A-1"])
    assert await service.expire_due() == 0

    clock.advance(301)
    assert await service.expire_due() == 1
    assert await seat_states(redis_client, settings.redis_key_prefix, event) == {"A-1": "free"}
    rebought = await service.reserve("bob", event, ["A-1"])
    late = await service.apply(reservation.id, Trigger.PAID)
    await service.apply(reservation.id, Trigger.PAID)

    assert late.status is ReservationStatus.EXPIRED
    assert await count_tickets(engine, event) == 0
    states = await seat_states(redis_client, settings.redis_key_prefix, event)
    assert states == {"A-1": f"held:{rebought.id}"}
    assert await refunded(engine) == [reservation.id]


async def test_payment_after_the_hold_ran_out_is_refunded_even_before_the_sweeper_ran(
    service: ReservationService,
    redis_client: aioredis.Redis,
    settings: CommonSettings,
    engine: AsyncEngine,
    clock: Clock,
) -> None:
    event = await make_sale(redis_client, settings.redis_key_prefix, seats=1)
    reservation = await service.reserve("alice", event, ["A-1"])
    clock.advance(301)

    late = await service.apply(reservation.id, Trigger.PAID)

    assert late.status is ReservationStatus.EXPIRED
    assert late.refund_requested
    assert await count_tickets(engine, event) == 0
    assert await seat_states(redis_client, settings.redis_key_prefix, event) == {"A-1": "free"}


async def test_owner_cancels_a_pending_reservation_and_a_later_payment_is_refunded(
    service: ReservationService,
    redis_client: aioredis.Redis,
    settings: CommonSettings,
    engine: AsyncEngine,
) -> None:
    event = await make_sale(redis_client, settings.redis_key_prefix, seats=1)
    reservation = await service.reserve("alice", event, ["A-1"])

    cancelled = await service.cancel("alice", reservation.id)
    paid_after = await service.apply(reservation.id, Trigger.PAID)

    assert cancelled.status is paid_after.status is ReservationStatus.CANCELLED
    assert paid_after.refund_requested
    assert await count_tickets(engine, event) == 0
    assert await seat_states(redis_client, settings.redis_key_prefix, event) == {"A-1": "free"}


async def test_confirmed_reservation_cannot_be_cancelled(
    service: ReservationService, redis_client: aioredis.Redis, settings: CommonSettings
) -> None:
    event = await make_sale(redis_client, settings.redis_key_prefix, seats=1)
    reservation = await service.reserve("alice", event, ["A-1"])
    await service.apply(reservation.id, Trigger.PAID)

    with pytest.raises(TransitionRefused, match="CONFIRMED"):
        await service.cancel("alice", reservation.id)


async def test_payment_outcomes_applied_together_each_end_as_they_would_alone(
    service: ReservationService,
    redis_client: aioredis.Redis,
    settings: CommonSettings,
    engine: AsyncEngine,
) -> None:
    event = await make_sale(redis_client, settings.redis_key_prefix, seats=5)
    paid = await service.reserve("alice", event, ["A-1", "A-2"])
    declined = await service.reserve("bob", event, ["A-3"])
    cancelled = await service.reserve("carol", event, ["A-4"])
    also_paid = await service.reserve("dave", event, ["A-5"])
    await service.cancel("carol", cancelled.id)

    results = await service.apply_many(
        [
            (paid.id, Trigger.PAID),
            (declined.id, Trigger.PAYMENT_FAILED),
            ("no-such-reservation", Trigger.PAID),
            (cancelled.id, Trigger.PAID),
            (also_paid.id, Trigger.PAID),
        ]
    )

    outcomes = [r if isinstance(r, Exception) else (r.id, r.status) for r in results]
    assert isinstance(outcomes.pop(2), ReservationNotFound)
    assert outcomes == [
        (paid.id, ReservationStatus.CONFIRMED),
        (declined.id, ReservationStatus.FAILED),
        (cancelled.id, ReservationStatus.CANCELLED),
        (also_paid.id, ReservationStatus.CONFIRMED),
    ]
    assert await tickets_by_seat(engine, event) == {
        "A-1": [paid.id],
        "A-2": [paid.id],
        "A-5": [also_paid.id],
    }
    assert await seat_states(redis_client, settings.redis_key_prefix, event) == {
        "A-1": f"sold:{paid.id}",
        "A-2": f"sold:{paid.id}",
        "A-3": "free",
        "A-4": "free",
        "A-5": f"sold:{also_paid.id}",
    }
    assert await refunded(engine) == [cancelled.id]


async def test_a_seat_sold_twice_fails_only_its_own_reservation_of_outcomes_applied_together(
    service: ReservationService,
    redis_client: aioredis.Redis,
    settings: CommonSettings,
    engine: AsyncEngine,
) -> None:
    event = await make_sale(redis_client, settings.redis_key_prefix, seats=3)
    before = await service.reserve("alice", event, ["A-1"])
    clashing = await service.reserve("bob", event, ["A-2"])
    after = await service.reserve("carol", event, ["A-3"])
    async with AsyncSession(engine) as session, session.begin():
        # A ticket Redis never heard of, as if its state had been lost.
        session.add(Ticket(event_id=event, seat_id="A-2", reservation_id="other", user_id="eve"))

    results = await service.apply_many([(r.id, Trigger.PAID) for r in (before, clashing, after)])

    assert [r if isinstance(r, Exception) else r.status for r in results] == [
        ReservationStatus.CONFIRMED,
        ReservationStatus.FAILED,
        ReservationStatus.CONFIRMED,
    ]
    assert await tickets_by_seat(engine, event) == {
        "A-1": [before.id],
        "A-2": ["other"],
        "A-3": [after.id],
    }
    assert await refunded(engine) == [clashing.id]


async def test_a_reservation_the_database_refuses_fails_alone_among_holds_written_together(
    service: ReservationService,
    redis_client: aioredis.Redis,
    settings: CommonSettings,
    engine: AsyncEngine,
) -> None:
    event = await make_sale(redis_client, settings.redis_key_prefix, seats=3)
    # Holds made at the same time are written in one transaction. MariaDB's strict mode refuses
    # a user id longer than its column, which fails that transaction.
    buyers = [("alice", "A-1"), ("u" * 100, "A-2"), ("carol", "A-3")]

    results = await asyncio.gather(
        *(service.reserve(user, event, [seat]) for user, seat in buyers), return_exceptions=True
    )

    alice, refused, carol = results
    assert isinstance(refused, TemporaryError)
    assert isinstance(alice, Reservation) and isinstance(carol, Reservation)
    assert await seat_states(redis_client, settings.redis_key_prefix, event) == {
        "A-1": f"held:{alice.id}",
        "A-2": "free",
        "A-3": f"held:{carol.id}",
    }
    assert sorted(m.key for m in await outbox(engine)) == sorted([alice.id, carol.id])
