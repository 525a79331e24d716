"""People who leave give their place back: away users spend no admission, and are removed."""

import redis.asyncio as aioredis
from ticketing.common.settings import CommonSettings
from ticketing.queue.admission import AdmissionWorker
from ticketing.queue.positions import position
from ticketing.queue.store import PlaceState, SaleQueue

from .factories import (
    admit_until,
    is_active,
    join_many,
    make_queue_settings,
    publish_sale,
    until_redis_time,
)


async def test_user_away_when_their_turn_comes_spends_no_admission_and_is_removed(
    queue: SaleQueue, redis_client: aioredis.Redis, settings: CommonSettings
) -> None:
    worker = AdmissionWorker(
        redis_client,
        make_queue_settings(settings, queue_away_after_seconds=0.5, queue_grace_seconds=1.0),
    )
    sale = await publish_sale(redis_client, queue, tps=100, max_active=1)
    gone, stays, behind = await join_many(queue, sale, 3)
    behind_ticket = (await queue.join(behind, sale)).ticket
    assert behind_ticket is not None
    await queue.mark_away([gone], 0.6)  # their socket closed
    await admit_until(worker, lambda: redis_client.zcard(queue.keys.active), 1)
    assert await redis_client.zscore(queue.keys.active, stays) is not None
    assert await redis_client.hget(queue.keys.parked, gone) is not None

    # Gone once the Redis clock passes their backdated heartbeat plus the grace period.
    heartbeat = await redis_client.zscore(queue.keys.heartbeat, gone)
    assert heartbeat is not None
    await until_redis_time(redis_client, heartbeat + worker.settings.queue_grace_seconds)
    await worker.tick(queue.event_id)
    assert await redis_client.hget(queue.keys.parked, gone) is None
    assert (await queue.join(gone, sale, create=False)).state is PlaceState.NONE
    assert position(await queue.state(), behind_ticket) == 1


async def test_user_back_within_the_grace_period_keeps_their_place(
    queue: SaleQueue, redis_client: aioredis.Redis, settings: CommonSettings
) -> None:
    worker = AdmissionWorker(
        redis_client,
        make_queue_settings(settings, queue_away_after_seconds=0.5, queue_grace_seconds=30),
    )
    sale = await publish_sale(redis_client, queue, tps=100, max_active=1, session_ttl_seconds=1)
    returning, other = await join_many(queue, sale, 2)
    await queue.mark_away([returning], 0.6)
    await admit_until(worker, lambda: redis_client.zcard(queue.keys.active), 1)
    assert await redis_client.zscore(queue.keys.active, other) is not None
    back = await queue.join(returning, sale)
    assert back.state is PlaceState.WAITING
    # The other session expires at its score in the active set; the returning user is next.
    expires = await redis_client.zscore(queue.keys.active, other)
    assert expires is not None
    await until_redis_time(redis_client, expires)
    await queue.touch([returning])  # their open socket's heartbeat
    await admit_until(worker, lambda: is_active(queue, returning), 1)
    assert await redis_client.zscore(queue.keys.active, returning) is not None


async def test_removal_ahead_moves_everyone_behind_up(
    queue: SaleQueue, worker: AdmissionWorker, redis_client: aioredis.Redis
) -> None:
    sale = await publish_sale(redis_client, queue, paused=True)
    users = await join_many(queue, sale, 5)
    last = await queue.join(users[-1], sale)
    assert last.ticket is not None
    assert position(await queue.state(), last.ticket) == 5
    for user in users[1:3]:
        await queue.mark_away([user], 3600)
    await worker.tick(queue.event_id)
    assert position(await queue.state(), last.ticket) == 3
