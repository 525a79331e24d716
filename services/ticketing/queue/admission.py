"""The admission worker: every tick, for every sale, let the head of the line in.

It reads the sale's runtime configuration on every tick (so a TPS or cap change applies within
one tick), opens and shuffles the pre-queue at opening, removes people who left, declares the
sale sold out, and admits through the shared token bucket. Run as many replicas as you like:
the bucket lives in Redis, so together they admit at the configured rate.
"""

import asyncio
import contextlib
import logging
import time

from ticketing.common.liveness import beat
from ticketing.common.redis_client import REDIS_UNAVAILABLE, RedisClient, connect_redis
from ticketing.common.redis_keys import sale_config_pattern
from ticketing.common.sale_config import Phase, SaleConfig, read_sale_config
from ticketing.queue.metrics import QUEUE_ADMITTED, QUEUE_REMOVED
from ticketing.queue.settings import QueueSettings, get_settings
from ticketing.queue.store import SaleQueue

log = logging.getLogger("ticketing.queue.admission")


def is_admitting(config: SaleConfig, now: float) -> bool:
    """Admission runs inside the sale window, unless the operator paused it or is doing maintenance."""
    return (
        config.opens_at.timestamp() <= now < config.closes_at.timestamp()
        and not config.paused
        and not config.maintenance
        and config.phase is not Phase.CLOSED
    )


class AdmissionWorker:
    def __init__(self, client: RedisClient, settings: QueueSettings) -> None:
        self.client = client
        self.settings = settings
        self._queues: dict[str, SaleQueue] = {}
        self._assigned: set[str] = set()
        self._sales: list[str] = []
        self._discovered_at = float("-inf")

    def queue(self, event_id: str) -> SaleQueue:
        if event_id not in self._queues:
            self._queues[event_id] = SaleQueue(
                self.client, self.settings.redis_key_prefix, event_id
            )
        return self._queues[event_id]

    async def sales(self) -> list[str]:
        """The sales the operator configured, rediscovered every few seconds."""
        now = time.monotonic()
        if now - self._discovered_at >= self.settings.queue_discovery_seconds:
            prefix = self.settings.redis_key_prefix
            head, tail = len(prefix) + 2, len("}:config")
            found = set()
            async for key in self.client.scan_iter(match=sale_config_pattern(prefix), count=1000):
                text = key.decode() if isinstance(key, bytes) else key
                found.add(text[head:-tail])
            self._sales = sorted(found)
            self._discovered_at = now
        return self._sales

    async def tick(self, event_id: str) -> list[str]:
        """One admission round for one sale; returns who was admitted."""
        config = await read_sale_config(self.client, self.settings.redis_key_prefix, event_id)
        if config is None:
            return []
        queue = self.queue(event_id)
        opened = config.opens_at.timestamp() <= time.time()
        if opened and event_id not in self._assigned and await queue.seal_and_assign(config):
            self._assigned.add(event_id)
        removed = await queue.sweep(self.settings.queue_grace_seconds)
        if removed:
            QUEUE_REMOVED.labels(event_id).inc(removed)
        seats = await queue.seat_counts()
        sold_out = await queue.is_sold_out()
        if not sold_out and (seats.none_left or config.phase is Phase.SOLD_OUT):
            sold_out = True
            if await queue.declare_sold_out():
                log.info(
                    "sale sold out: admission stops, the line becomes a waiting list",
                    extra={"sale": event_id},
                )
        cap, ttl = config.max_active, float(config.session_ttl_seconds)
        if sold_out:
            # Waiting-list mode: one time-limited offer per seat that came back.
            cap, ttl = min(cap, seats.free), float(self.settings.queue_offer_ttl_seconds)
        admitted = await queue.admit(
            tps=config.tps,
            max_active=cap,
            session_ttl_seconds=ttl,
            away_after_seconds=self.settings.queue_away_after_seconds,
            open_=is_admitting(config, time.time()),
        )
        if admitted:
            QUEUE_ADMITTED.labels(event_id).inc(len(admitted))
        return admitted

    async def run(self) -> None:
        """Tick every sale until cancelled; a Redis outage is logged and retried next tick."""
        while True:
            beat()
            started = time.monotonic()
            try:
                for event_id in await self.sales():
                    await self.tick(event_id)
            except REDIS_UNAVAILABLE:
                log.exception("admission tick failed; retrying next tick")
            elapsed = time.monotonic() - started
            await asyncio.sleep(max(0.0, self.settings.queue_admission_tick_seconds - elapsed))


async def run_worker() -> None:
    """`python -m ticketing queue-admission`: an admission worker replica."""
    settings = get_settings()
    client = connect_redis(settings)
    try:
        with contextlib.suppress(asyncio.CancelledError):
            await AdmissionWorker(client, settings).run()
    finally:
        await client.aclose()
