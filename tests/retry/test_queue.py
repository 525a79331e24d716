"""The Redis delay queue parks once, hands each due message to one claimant, and loses none."""

import asyncio

import redis.asyncio as aioredis
from ticketing.common.redis_keys import RetryKeys
from ticketing.common.settings import CommonSettings
from ticketing.retry.queue import DelayQueue, TopicBacklog
from ticketing.retry.worker import backlog

from tests.retry.factories import make_parked

TOPIC = "reservation.paid"


async def test_parking_the_same_retry_record_twice_keeps_one(
    redis_client: aioredis.Redis, settings: CommonSettings
) -> None:
    queue = DelayQueue(redis_client, settings.redis_key_prefix)
    assert await queue.park([make_parked(TOPIC, 1)]) == 1
    assert await queue.park([make_parked(TOPIC, 1), make_parked(TOPIC, 1, attempt=2)]) == 1
    assert await backlog(queue) == 2


async def test_a_claimed_message_is_not_parked_again_while_it_is_being_sent(
    redis_client: aioredis.Redis, settings: CommonSettings
) -> None:
    queue = DelayQueue(redis_client, settings.redis_key_prefix)
    await queue.park([make_parked(TOPIC, 1)])
    assert len(await queue.claim(TOPIC, now_ms=10, lease_ms=60_000, limit=10)) == 1
    assert await queue.park([make_parked(TOPIC, 1)]) == 0
    assert await queue.claim(TOPIC, now_ms=20, lease_ms=60_000, limit=10) == []


async def test_only_due_messages_are_claimed(
    redis_client: aioredis.Redis, settings: CommonSettings
) -> None:
    queue = DelayQueue(redis_client, settings.redis_key_prefix)
    await queue.park([make_parked(TOPIC, 1, due_at_ms=1000), make_parked(TOPIC, 2, due_at_ms=2000)])
    claimed = await queue.claim(TOPIC, now_ms=1500, lease_ms=60_000, limit=10)
    assert [m.value for m in claimed] == [b"1"]
    assert claimed[0] == make_parked(TOPIC, 1, due_at_ms=1000)


async def test_concurrent_claims_never_hand_out_the_same_message(
    redis_client: aioredis.Redis, settings: CommonSettings
) -> None:
    queue = DelayQueue(redis_client, settings.redis_key_prefix)
    await queue.park([make_parked(TOPIC, n) for n in range(1000)])
    batches = await asyncio.gather(
        *(queue.claim(TOPIC, now_ms=10, lease_ms=60_000, limit=30) for _ in range(50))
    )
    members = [m.member for batch in batches for m in batch]
    assert len(members) == len(set(members)) == 1000


async def test_claimed_but_unacked_messages_return_after_the_lease(
    redis_client: aioredis.Redis, settings: CommonSettings
) -> None:
    queue = DelayQueue(redis_client, settings.redis_key_prefix)
    await queue.park([make_parked(TOPIC, n) for n in range(3)])
    first = await queue.claim(TOPIC, now_ms=1000, lease_ms=500, limit=10)
    await queue.ack(TOPIC, [first[0].member])
    assert await queue.claim(TOPIC, now_ms=1499, lease_ms=500, limit=10) == []
    again = await queue.claim(TOPIC, now_ms=1500, lease_ms=500, limit=10)
    assert sorted(m.member for m in again) == [f"{TOPIC}:0:1:1", f"{TOPIC}:0:2:1"]


async def test_backlog_is_readable_from_the_documented_keys(
    redis_client: aioredis.Redis, settings: CommonSettings
) -> None:
    queue = DelayQueue(redis_client, settings.redis_key_prefix)
    await queue.park([make_parked(TOPIC, n, due_at_ms=n * 1000) for n in range(1, 5)])
    await queue.claim(TOPIC, now_ms=1000, lease_ms=60_000, limit=10)
    assert await queue.backlog(now_ms=2500) == {TOPIC: TopicBacklog(waiting=2, due=1, claimed=1)}
    keys = RetryKeys(settings.redis_key_prefix)
    assert await redis_client.smembers(keys.topics) == {TOPIC.encode()}
    direct = await redis_client.zcard(keys.delayed(TOPIC)) + await redis_client.zcard(
        keys.claimed(TOPIC)
    )
    assert direct == await backlog(queue) == 4
    await queue.ack(TOPIC, [f"{TOPIC}:0:{n}:1" for n in range(1, 5)])
    assert await backlog(queue) == 0
    assert await redis_client.hlen(keys.payloads(TOPIC)) == 0
