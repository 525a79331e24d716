"""Joining the line: one place per user, in arrival order, only while the sale accepts people."""

import asyncio
from datetime import UTC, datetime, timedelta

import redis.asyncio as aioredis
from ticketing.queue.admission import AdmissionWorker
from ticketing.queue.store import PlaceState, SaleQueue

from .factories import admit_until, make_sale, publish_sale


async def test_joining_again_keeps_the_same_place(queue: SaleQueue) -> None:
    sale = make_sale()
    first = await queue.join("alice", sale)
    # Another tab, a reconnect and a retried request, some of them at the same moment.
    again = await asyncio.gather(*(queue.join("alice", sale) for _ in range(5)))
    assert first.state is PlaceState.WAITING
    assert {place.ticket for place in again} == {first.ticket}
    assert await queue.client.zcard(queue.keys.waiting) == 1


async def test_later_arrivals_get_later_places(queue: SaleQueue) -> None:
    sale = make_sale()
    tickets = [(await queue.join(f"user-{n}", sale)).ticket for n in range(10)]
    assert tickets == sorted(tickets)
    assert len(set(tickets)) == 10


async def test_join_before_the_pre_queue_opens_is_refused(queue: SaleQueue) -> None:
    opens = datetime.now(UTC) + timedelta(hours=2)
    sale = make_sale(opens_at=opens, closes_at=opens + timedelta(hours=1), pre_queue_minutes=30)
    assert (await queue.join("alice", sale)).state is PlaceState.NOT_OPEN


async def test_join_after_the_sale_closed_is_refused(queue: SaleQueue) -> None:
    closed = datetime.now(UTC) - timedelta(minutes=1)
    sale = make_sale(opens_at=closed - timedelta(hours=1), closes_at=closed)
    assert (await queue.join("alice", sale)).state is PlaceState.CLOSED


async def test_looking_up_a_place_does_not_create_one(queue: SaleQueue) -> None:
    sale = make_sale()
    assert (await queue.join("alice", sale, create=False)).state is PlaceState.NONE
    assert await queue.client.zcard(queue.keys.waiting) == 0


async def test_admitted_user_who_joins_again_stays_admitted(
    queue: SaleQueue, worker: AdmissionWorker, redis_client: aioredis.Redis
) -> None:
    sale = await publish_sale(redis_client, queue)
    await queue.join("alice", sale)
    await admit_until(worker, lambda: queue.client.zcard(queue.keys.active), 1)
    assert (await queue.join("alice", sale)).state is PlaceState.ADMITTED
