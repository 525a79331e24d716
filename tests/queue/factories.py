"""Small factories for waiting-room tests: a sale's configuration, settings, users in line."""

import asyncio
import time
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta

import redis.asyncio as aioredis
from ticketing.common.sale_config import SaleConfig, write_sale_config
from ticketing.common.settings import CommonSettings
from ticketing.queue.admission import AdmissionWorker
from ticketing.queue.settings import QueueSettings
from ticketing.queue.store import SaleQueue


def make_sale(event_id: str = "spring-concert", **overrides: object) -> SaleConfig:
    """A sale that opened a minute ago and closes in an hour, unless told otherwise."""
    now = datetime.now(UTC)
    fields: dict[str, object] = {
        "event_id": event_id,
        "tps": 100,
        "max_active": 1000,
        "session_ttl_seconds": 300,
        "opens_at": now - timedelta(minutes=1),
        "closes_at": now + timedelta(hours=1),
        "phase": "OnSale",
    }
    return SaleConfig.model_validate({**fields, **overrides})


def make_queue_settings(common: CommonSettings, **overrides: object) -> QueueSettings:
    fields: dict[str, object] = {
        "redis_url": common.redis_url,
        "redis_cluster": common.redis_cluster,
        "redis_key_prefix": common.redis_key_prefix,
        "queue_admission_tick_seconds": 0.05,
        "queue_push_interval_seconds": 0.2,
        "queue_discovery_seconds": 0.5,
        **overrides,
    }
    return QueueSettings.model_validate(fields)


async def join_many(queue: SaleQueue, config: SaleConfig, count: int, start: int = 0) -> list[str]:
    users = [f"user-{n:05d}" for n in range(start, start + count)]
    for user in users:
        await queue.join(user, config)
    return users


async def publish_sale(client: aioredis.Redis, queue: SaleQueue, **overrides: object) -> SaleConfig:
    """Write the sale's configuration as the operator would, for the admission worker to read."""
    sale = make_sale(queue.event_id, **overrides)
    await write_sale_config(client, queue.keys.prefix, sale)
    return sale


async def admit_until(
    worker: AdmissionWorker,
    measure: Callable[[], Awaitable[int]],
    target: int,
    within_seconds: float = 5.0,
    event_id: str = "spring-concert",
) -> int:
    """Tick the worker until `measure()` reaches `target`; returns the last measure."""
    deadline = time.monotonic() + within_seconds
    value = await measure()
    while value < target and time.monotonic() < deadline:
        await worker.tick(event_id)
        await asyncio.sleep(0.02)
        value = await measure()
    return value


async def redis_now(client: aioredis.Redis) -> float:
    """The Redis clock, in seconds: the one the waiting room's scripts read (never the caller's)."""
    seconds, micros = await client.time()
    return float(seconds) + micros / 1_000_000


async def until_redis_time(client: aioredis.Redis, moment: float) -> None:
    """Return once the Redis clock has passed `moment` (a score the scripts compare with it)."""
    for _ in range(1000):
        now = await redis_now(client)
        if now > moment:
            return
        await asyncio.sleep(moment - now + 0.01)
    raise AssertionError(f"the Redis clock never passed {moment}")


async def is_active(queue: SaleQueue, user: str) -> int:
    """1 while the user holds an admitted session, for `admit_until`."""
    return int(await queue.client.zscore(queue.keys.active, user) is not None)
