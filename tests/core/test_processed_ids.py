"""A consumer group remembers the ids it applied for one to two dedup windows, in time buckets
that expire on their own, against a real Redis and a clock the test sets."""

import asyncio
import time

import redis.asyncio as aioredis
from ticketing.common.dedup import ProcessedIds
from ticketing.common.redis_keys import processed_key
from ticketing.common.settings import CommonSettings

WINDOW = 3600


class Clock:
    def __init__(self, now: float) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


async def test_an_id_is_seen_from_the_next_bucket_and_forgotten_two_buckets_on(
    settings: CommonSettings, redis_client: aioredis.Redis
) -> None:
    bucket = int(time.time()) // WINDOW
    # Marked in the last second of its bucket: the next bucket must still find it.
    clock = Clock(bucket * WINDOW + WINDOW - 1)
    ids = ProcessedIds(redis_client, settings.redis_key_prefix, "group", WINDOW, clock)
    await ids.mark("m1")

    clock.now += WINDOW - 1
    assert await ids.seen("m1")
    assert not await ids.seen("m2")
    clock.now = (bucket + 2) * WINDOW
    assert not await ids.seen("m1")


async def test_a_bucket_expires_one_window_after_it_ends_however_often_it_is_written(
    settings: CommonSettings, redis_client: aioredis.Redis
) -> None:
    clock = Clock(time.time())
    ids = ProcessedIds(redis_client, settings.redis_key_prefix, "group", WINDOW, clock)
    bucket = int(clock.now) // WINDOW
    for n in range(3):
        await ids.mark(f"m{n}")
    key = processed_key(settings.redis_key_prefix, "group", bucket)
    assert await redis_client.expiretime(key) == (bucket + 2) * WINDOW
    assert await redis_client.scard(key) == 3


async def test_ids_checked_and_marked_at_the_same_time_each_get_their_own_answer(
    settings: CommonSettings, redis_client: aioredis.Redis
) -> None:
    # A consumer handles many messages at once, and their checks and marks share round trips.
    ids = ProcessedIds(redis_client, settings.redis_key_prefix, "group", WINDOW)
    await asyncio.gather(*(ids.mark(f"m{n}") for n in range(0, 300, 2)))

    seen = await asyncio.gather(*(ids.seen(f"m{n}") for n in range(300)))

    assert seen == [n % 2 == 0 for n in range(300)]
