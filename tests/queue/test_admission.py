"""Admission: the head of the line goes in at the configured rate, never beyond the cap."""

import asyncio
import itertools
import time

import pytest
import redis.asyncio as aioredis
from ticketing.common.sale_config import write_sale_config
from ticketing.common.settings import CommonSettings
from ticketing.common.tokens import TokenRejected, Tokens
from ticketing.queue.admission import AdmissionWorker
from ticketing.queue.positions import position
from ticketing.queue.settings import QueueSettings
from ticketing.queue.store import SaleQueue

from .factories import admit_until, is_active, join_many, publish_sale


async def test_active_sessions_never_exceed_the_cap(
    queue: SaleQueue, worker: AdmissionWorker, redis_client: aioredis.Redis
) -> None:
    sale = await publish_sale(redis_client, queue, tps=1000, max_active=5)
    await join_many(queue, sale, 40)
    highest = 0
    for _ in range(30):
        await worker.tick(queue.event_id)
        highest = max(highest, await redis_client.zcard(queue.keys.active))
        await asyncio.sleep(0.01)
    assert highest == 5
    assert await redis_client.zcard(queue.keys.waiting) == 35


async def test_expired_session_gives_its_place_to_the_next_person(
    queue: SaleQueue, worker: AdmissionWorker, redis_client: aioredis.Redis
) -> None:
    sale = await publish_sale(redis_client, queue, tps=100, max_active=1, session_ttl_seconds=1)
    first, second = await join_many(queue, sale, 2)
    await admit_until(worker, lambda: redis_client.zcard(queue.keys.active), 1)
    assert await redis_client.zscore(queue.keys.active, first) is not None
    assert await redis_client.zscore(queue.keys.waiting, second) is not None
    await asyncio.sleep(1.1)
    await admit_until(worker, lambda: is_active(queue, second), 1)
    assert await redis_client.zscore(queue.keys.active, first) is None
    assert await redis_client.zscore(queue.keys.active, second) is not None


async def test_positions_strictly_decrease_until_admitted(
    queue: SaleQueue, worker: AdmissionWorker, redis_client: aioredis.Redis
) -> None:
    sale = await publish_sale(redis_client, queue, tps=20)
    users = await join_many(queue, sale, 12)
    last = await queue.join(users[-1], sale)
    assert last.ticket is not None
    seen: list[int] = []
    for _ in range(200):
        await worker.tick(queue.event_id)
        now = position(await queue.state(), last.ticket)
        if now is None:
            break
        if not seen or now != seen[-1]:
            seen.append(now)
        await asyncio.sleep(0.02)
    assert seen[0] == 12
    assert seen == sorted(set(seen), reverse=True), "a position went up or repeated out of order"
    assert len(seen) >= 3
    assert await redis_client.zscore(queue.keys.active, users[-1]) is not None


async def test_paused_sale_admits_nobody(
    queue: SaleQueue, worker: AdmissionWorker, redis_client: aioredis.Redis
) -> None:
    sale = await publish_sale(redis_client, queue, tps=1000, paused=True)
    await join_many(queue, sale, 5)
    for _ in range(10):
        await worker.tick(queue.event_id)
        await asyncio.sleep(0.02)
    assert await redis_client.zcard(queue.keys.active) == 0
    await write_sale_config(
        redis_client, queue.keys.prefix, sale.model_copy(update={"paused": False})
    )
    assert await admit_until(worker, lambda: redis_client.zcard(queue.keys.active), 5) == 5


async def test_two_workers_together_admit_at_the_configured_rate(
    queue: SaleQueue, redis_client: aioredis.Redis, queue_settings: QueueSettings
) -> None:
    """Counted on the Redis clock the admission script reads, tick by tick, so a slow machine
    changes how many ticks there are, not whether the count is right: over the ticks, the two
    workers admit exactly the tokens their shared bucket (50/s, holding at most 1 s of them)
    earned, less what it still holds and what a gap of over a second let overflow."""
    tps, bucket_size = 50, 50
    sale = await publish_sale(redis_client, queue, tps=tps, max_active=100_000)
    await join_many(queue, sale, 400)
    workers = [AdmissionWorker(redis_client, queue_settings) for _ in range(2)]
    ticked_at: list[float] = []  # the bucket's time after each tick, in order
    admitted = 0
    one_at_a_time = asyncio.Lock()

    async def ticking(worker: AdmissionWorker) -> None:
        nonlocal admitted
        while len(ticked_at) < 40:
            async with one_at_a_time:
                admitted += len(await worker.tick(sale.event_id))
                ticked_at.append(float(await redis_client.hget(queue.keys.admission_bucket, "ts")))
            await asyncio.sleep(queue_settings.queue_admission_tick_seconds)

    await asyncio.gather(*(ticking(worker) for worker in workers))

    earned = tps * (ticked_at[-1] - ticked_at[0])
    gaps = [later - earlier for earlier, later in itertools.pairwise(ticked_at)]
    # After a tick the bucket holds less than one token; a gap then overflows by its tokens
    # beyond the bucket's size, give or take that one.
    overflow_least = sum(max(0.0, gap * tps - bucket_size) for gap in gaps)
    overflow_most = sum(max(0.0, gap * tps + 1 - bucket_size) for gap in gaps)
    left = float(await redis_client.hget(queue.keys.admission_bucket, "tokens"))
    # Two workers sharing the bucket never add up to more, however they interleave.
    assert earned - overflow_most - left - 1 <= admitted <= earned - overflow_least - left + 1


async def test_admission_token_verifies_only_for_its_user_and_sale(
    queue: SaleQueue,
    worker: AdmissionWorker,
    redis_client: aioredis.Redis,
    settings: CommonSettings,
) -> None:
    sale = await publish_sale(redis_client, queue, session_ttl_seconds=120)
    await queue.join("alice", sale)
    await admit_until(worker, lambda: redis_client.zcard(queue.keys.active), 1)
    token = await queue.admission_token(settings, "alice")
    assert token is not None
    assert await queue.admission_token(settings, "alice") == token, "one token per session"
    tokens = Tokens.from_settings(settings)
    admission = await tokens.admission_for(token, "alice", queue.event_id)
    assert 100 < admission.expires_at - time.time() <= 120
    for user, event in (("mallory", queue.event_id), ("alice", "another-sale")):
        with pytest.raises(TokenRejected):
            await tokens.admission_for(token, user, event)
    assert await queue.admission_token(settings, "bob") is None
