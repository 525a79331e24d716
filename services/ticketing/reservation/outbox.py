"""The outbox relay: publishes committed outbox rows to Kafka and marks them sent only after
the broker acknowledged them, so a crash anywhere re-sends rather than loses a message."""

import asyncio
import contextlib
import logging

from aiokafka import AIOKafkaProducer
from sqlalchemy import insert, select, update
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine
from sqlmodel import col

from ticketing.common.liveness import beat
from ticketing.common.sqltypes import utcnow
from ticketing.common.topics import Topics
from ticketing.reservation.models import OutboxMessage

log = logging.getLogger(__name__)


async def write_outbox(conn: AsyncConnection, message: OutboxMessage) -> None:
    """Add the message to the outbox inside the caller's transaction (the relay sends it)."""
    await conn.execute(insert(OutboxMessage), [message.model_dump(exclude={"id"})])


class OutboxRelay:
    def __init__(
        self,
        engine: AsyncEngine,
        producer: AIOKafkaProducer,
        topics: Topics,
        wakeup: asyncio.Event,
        poll_seconds: float,
        batch_size: int = 200,
    ) -> None:
        self._engine = engine
        self._producer = producer
        self._topics = topics
        self._wakeup = wakeup
        self._poll_seconds = poll_seconds
        self._batch_size = batch_size

    async def run(self) -> None:
        """Relay until cancelled; a failed round (broker or database down) is tried again."""
        while True:
            beat()
            self._wakeup.clear()
            try:
                sent = await self.publish_pending()
            except Exception:
                log.exception("outbox relay round failed; retrying")
                sent = 0
            if sent < self._batch_size:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._wakeup.wait(), self._poll_seconds)

    async def publish_pending(self) -> int:
        """Publish one batch of unsent rows in order; how many were sent.

        SKIP LOCKED lets several replicas relay side by side without sending the same row twice
        (a duplicate would still be harmless: consumers skip known message ids).
        """
        # READ COMMITTED: under REPEATABLE READ the locking read also locks the index gap where
        # new rows go, so while the broker is away every hold's INSERT would wait on this send.
        relay_engine = self._engine.execution_options(isolation_level="READ COMMITTED")
        # Core statements, and one UPDATE for the whole batch: the ORM loaded every row as an
        # object and flushed one UPDATE per row, all on the service's busy event loop.
        async with relay_engine.begin() as conn:
            rows = (
                await conn.execute(
                    select(
                        col(OutboxMessage.id),
                        col(OutboxMessage.topic),
                        col(OutboxMessage.key),
                        col(OutboxMessage.value),
                    )
                    .where(col(OutboxMessage.sent_at).is_(None))
                    .order_by(col(OutboxMessage.id))
                    .limit(self._batch_size)
                    .with_for_update(skip_locked=True)
                )
            ).all()
            if not rows:
                return 0
            acks = [
                await self._producer.send(
                    self._topics.name(row.topic), row.value, key=row.key.encode()
                )
                for row in rows
            ]
            await asyncio.gather(*acks)
            await conn.execute(
                update(OutboxMessage)
                .where(col(OutboxMessage.id).in_([row.id for row in rows]))
                .values(sent_at=utcnow())
            )
        return len(rows)
