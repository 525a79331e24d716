"""What the operator measures in Redis: the queue, the seats and the retry backlog.

Reads only; the services own these keys. Redis failures surface as `RedisUnavailable`.
"""

from collections import Counter
from dataclasses import dataclass

from redis.exceptions import RedisError
from ticketing.common.errors import TemporaryError
from ticketing.common.redis_client import RedisClient
from ticketing.common.redis_keys import RetryKeys, SaleKeys


class RedisUnavailable(TemporaryError):
    """Redis did not answer; the next reconcile tries again."""


@dataclass(frozen=True)
class QueueFigures:
    waiting: int
    active: int


@dataclass(frozen=True)
class SeatFigures:
    free: int
    held: int
    sold: int

    @property
    def total(self) -> int:
        return self.free + self.held + self.sold

    @property
    def sold_out(self) -> bool:
        """Every seat is sold: none free, and none held that could still come back."""
        return self.total > 0 and self.free == 0 and self.held == 0


async def read_queue(client: RedisClient, keys: SaleKeys) -> QueueFigures:
    try:
        async with client.pipeline(transaction=False) as pipe:
            pipe.zcard(keys.waiting)
            pipe.zcard(keys.active)
            waiting, active = await pipe.execute()
    except RedisError as exc:
        raise RedisUnavailable(f"reading the queue failed: {exc}") from exc
    return QueueFigures(waiting=int(waiting), active=int(active))


async def read_seats(client: RedisClient, keys: SaleKeys) -> SeatFigures:
    """Counts of the seats hash's values: `free`, `held:<rid>` and `sold:<rid>`."""
    try:
        values = await client.hvals(keys.seats)
    except RedisError as exc:
        raise RedisUnavailable(f"reading the seats failed: {exc}") from exc
    states = Counter(_state(v) for v in values)
    return SeatFigures(free=states["free"], held=states["held"], sold=states["sold"])


def _state(value: bytes | str) -> str:
    text = value.decode() if isinstance(value, bytes) else value
    return text.partition(":")[0]


async def read_retry_backlog(client: RedisClient, prefix: str) -> int:
    """Messages waiting for a retry worker: parked (delayed) plus claimed, over every topic the
    retry machinery has registered in `RetryKeys.topics`."""
    keys = RetryKeys(prefix)
    try:
        topics = await client.smembers(keys.topics)
        if not topics:
            return 0
        async with client.pipeline(transaction=False) as pipe:
            for raw in topics:
                topic = raw.decode() if isinstance(raw, bytes) else raw
                pipe.zcard(keys.delayed(topic))
                pipe.zcard(keys.claimed(topic))
            counts = await pipe.execute()
    except RedisError as exc:
        raise RedisUnavailable(f"reading the retry backlog failed: {exc}") from exc
    return sum(int(c) for c in counts)
