"""Which message ids a consumer group already applied, remembered for a bounded window.

Time buckets, not one key per id: a group writes each id into the set of the current bucket
(`window` seconds wide) and counts an id as seen if it is in the current or the previous bucket,
so an id is remembered for at least one window and at most two. Each bucket expires one window
after its own end and is never pushed back, so memory holds at most two windows of ids.

Why buckets and not a key per id with its own TTL: a set member costs about 40 % less memory
than a key with an expiry (no key name repeating the prefix and group, no entry in the expiry
table: 112 against 181 bytes an id, `loadtest/bench_dedup.py`), and the keyspace keeps two keys
per group instead of one per message, which the admission worker's `SCAN` for sales walks every
few seconds. The check reads two keys; both carry the group as a hash tag (`processed_key`), so
they share one Redis Cluster slot and the pipeline stays one round trip to one node. The checks
of the messages a consumer handles at the same time go in one such round trip, and so do their
marks.

Ids go by the consumer's clock, EXPIREAT by Redis's: two replicas whose clocks disagree by less
than a window still find each other's ids.
"""

import time
from collections.abc import Callable, Sequence

from ticketing.common.coalesce import Coalescer
from ticketing.common.redis_client import RedisClient
from ticketing.common.redis_keys import processed_key

# The most ids one round trip checks or marks.
MAX_BATCH = 256


class ProcessedIds:
    """The ids a consumer group applied within the last window (at least `window_seconds`)."""

    def __init__(
        self,
        redis: RedisClient,
        prefix: str,
        group: str,
        window_seconds: int,
        clock: Callable[[], float] = time.time,
    ) -> None:
        if window_seconds < 1:
            raise ValueError("the dedup window must be at least one second")
        self._redis = redis
        self._prefix = prefix
        self._group = group
        self._window = window_seconds
        self._clock = clock
        # The checks and marks of the messages a consumer handles at once share round trips.
        self._seen = Coalescer(self._seen_many, MAX_BATCH)
        self._mark = Coalescer(self._mark_many, MAX_BATCH)

    def _bucket(self) -> int:
        return int(self._clock()) // self._window

    def _key(self, bucket: int) -> str:
        return processed_key(self._prefix, self._group, bucket)

    async def seen(self, message_id: str) -> bool:
        """Whether `message_id` was marked in the current or the previous bucket."""
        return await self._seen.submit(message_id)

    async def mark(self, message_id: str) -> None:
        """Remember `message_id` as applied; its bucket goes one window after the bucket ends."""
        await self._mark.submit(message_id)

    async def _seen_many(self, message_ids: Sequence[str]) -> list[bool]:
        bucket = self._bucket()
        async with self._redis.pipeline(transaction=False) as pipe:
            pipe.smismember(self._key(bucket), list(message_ids))
            pipe.smismember(self._key(bucket - 1), list(message_ids))
            current, previous = await pipe.execute()
        return [bool(now or before) for now, before in zip(current, previous, strict=True)]

    async def _mark_many(self, message_ids: Sequence[str]) -> list[None]:
        bucket = self._bucket()
        key = self._key(bucket)
        async with self._redis.pipeline(transaction=True) as pipe:
            pipe.sadd(key, *message_ids)
            pipe.expireat(key, (bucket + 2) * self._window)
            await pipe.execute()
        return [None] * len(message_ids)
