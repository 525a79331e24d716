"""The retry worker: claims due messages, sends them back to their original topic, acks on success.

Several workers share one queue: a claim moves messages under a lease atomically, so no two
workers hold the same message. A message is removed only after the broker acknowledged it; one a
worker claimed but never sent (the worker died, the send failed) returns when its lease expires.
"""

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable

from ticketing.common.liveness import beat
from ticketing.common.producer import RenewingProducer
from ticketing.common.redis_client import REDIS_UNAVAILABLE
from ticketing.retry import metrics
from ticketing.retry.queue import DelayQueue, Parked

log = logging.getLogger(__name__)


class RetryWorker:
    def __init__(
        self,
        queue: DelayQueue,
        producer: RenewingProducer,
        lease_ms: int,
        batch: int,
        poll_interval_s: float,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._queue = queue
        self._producer = producer
        self._lease_ms = lease_ms
        self._batch = batch
        self._poll_interval_s = poll_interval_s
        self._clock = clock

    def _now_ms(self) -> int:
        return int(self._clock() * 1000)

    async def run_once(self) -> int:
        """Claim and resend one batch per topic; returns how many the broker acknowledged."""
        sent = 0
        for topic in await self._queue.topics():
            claimed = await self._queue.claim(topic, self._now_ms(), self._lease_ms, self._batch)
            if claimed:
                sent += await self._resend(topic, claimed)
        return sent

    async def _resend(self, topic: str, claimed: list[Parked]) -> int:
        futures = [
            await self._producer.send(m.topic, value=m.value, key=m.key, headers=m.headers)
            for m in claimed
        ]
        results = await asyncio.gather(*futures, return_exceptions=True)
        acked = [
            m.member
            for m, r in zip(claimed, results, strict=True)
            if not isinstance(r, BaseException)
        ]
        if len(acked) < len(claimed):
            # Left claimed: they return to the queue when the lease expires.
            log.warning(
                "broker refused resends; they return after the lease",
                extra={"topic": topic, "failed": len(claimed) - len(acked)},
            )
        await self._queue.ack(topic, acked)
        metrics.RESENT.labels(topic=topic).inc(len(acked))
        return len(acked)

    async def run(self, stop: asyncio.Event) -> None:
        while not stop.is_set():
            beat()
            try:
                sent = await self.run_once()
                await report_backlog(self._queue, self._now_ms())
            except REDIS_UNAVAILABLE as exc:
                # Redis is away (a restart, a failover): wait and claim again. What this worker
                # had claimed returns after its lease; one sent but not acked is sent again,
                # a duplicate the consumers' idempotency absorbs.
                log.warning("delay queue unreachable", extra={"error": repr(exc)})
                sent = 0
            if sent == 0:
                # Wakes at once on stop, otherwise after one poll interval.
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(stop.wait(), self._poll_interval_s)


async def report_backlog(queue: DelayQueue, now_ms: int) -> int:
    """Update the backlog gauges; returns the total the operator scales workers on."""
    total = 0
    for topic, counts in (await queue.backlog(now_ms)).items():
        metrics.BACKLOG.labels(topic=topic, state="waiting").set(counts.waiting)
        metrics.BACKLOG.labels(topic=topic, state="due").set(counts.due)
        metrics.BACKLOG.labels(topic=topic, state="claimed").set(counts.claimed)
        total += counts.total
    return total


async def backlog(queue: DelayQueue) -> int:
    """Messages waiting, due or claimed across every topic: what the operator scales workers on."""
    return sum(c.total for c in (await queue.backlog(int(time.time() * 1000))).values())
