"""The outbox relay: publishes committed outbox rows to Kafka and marks them sent only after
the broker acknowledged them, so a crash anywhere re-sends rather than loses a message.

A round holds no transaction and no connection while it waits for the broker: it claims a batch
in one short transaction, sends with nothing open, and marks the batch sent in another. A batch
the broker took but the database would not mark (it was away) is marked first thing in the next
round, not re-sent when its claim lapses. A relay that dies mid-send leaves its claim to lapse;
the rows are then sent again (consumers skip a message id they have seen).
"""

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Sequence
from datetime import timedelta

from sqlalchemy import Row, insert, or_, select, text, update
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine
from sqlmodel import col

from ticketing.common.liveness import beat
from ticketing.common.producer import RenewingProducer
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
        producer: RenewingProducer,
        topics: Topics,
        wakeup: asyncio.Event,
        poll_seconds: float,
        claim_seconds: float,
        batch_size: int = 200,
    ) -> None:
        self._engine = engine
        self._producer = producer
        self._topics = topics
        self._wakeup = wakeup
        self._poll_seconds = poll_seconds
        self._claim = timedelta(seconds=claim_seconds)
        self._batch_size = batch_size
        # Ids the broker acknowledged whose rows are not marked sent yet.
        self._sent_unmarked: list[int] = []

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
        """Publish one batch of unsent rows in order; how many were sent."""
        if self._sent_unmarked:
            await self._mark(self._sent_unmarked, sent_at=utcnow())
            self._sent_unmarked = []
        rows = await self._claim_batch()
        if not rows:
            return 0
        ids = [row.id for row in rows]
        try:
            acks = [
                await self._producer.send(
                    self._topics.name(row.topic), row.value, key=row.key.encode()
                )
                for row in rows
            ]
            await asyncio.gather(*acks)
        except BaseException:
            # Sent or not, the rows go back now, not when the claim lapses.
            await self._mark(ids, claimed_until=None)
            raise
        self._sent_unmarked = ids
        await self._mark(ids, sent_at=utcnow())
        self._sent_unmarked = []
        return len(rows)

    async def _claim_batch(self) -> Sequence[Row[int | None, str, str, bytes]]:
        """The oldest unsent, unclaimed rows, claimed in one short transaction.

        SKIP LOCKED lets several replicas claim side by side without claiming the same row.
        """
        now = utcnow()
        async with self._read_committed() as conn:
            rows = (
                await conn.execute(
                    select(
                        col(OutboxMessage.id),
                        col(OutboxMessage.topic),
                        col(OutboxMessage.key),
                        col(OutboxMessage.value),
                    )
                    .where(
                        col(OutboxMessage.sent_at).is_(None),
                        or_(
                            col(OutboxMessage.claimed_until).is_(None),
                            col(OutboxMessage.claimed_until) < now,
                        ),
                    )
                    .order_by(col(OutboxMessage.id))
                    .limit(self._batch_size)
                    .with_for_update(skip_locked=True)
                )
            ).all()
            if rows:
                await conn.execute(
                    update(OutboxMessage)
                    .where(col(OutboxMessage.id).in_([row.id for row in rows]))
                    .values(claimed_until=now + self._claim)
                )
        return rows

    async def _mark(self, ids: list[int], **values: object) -> None:
        async with self._read_committed() as conn:
            await conn.execute(
                update(OutboxMessage).where(col(OutboxMessage.id).in_(ids)).values(**values)
            )

    @contextlib.asynccontextmanager
    async def _read_committed(self) -> AsyncIterator[AsyncConnection]:
        """A transaction at READ COMMITTED: under REPEATABLE READ the claim's locking read also
        locks the index gap where new rows go, so every hold's INSERT would wait on the claim.

        Set by the transaction's first statement, not by the engine's `isolation_level` option:
        SQLAlchemy runs that option's SET while it hands the connection out, and a relay
        cancelled there (its service stopping) never gave the connection back to the pool.
        """
        async with self._engine.begin() as conn:
            await conn.execute(text("SET TRANSACTION ISOLATION LEVEL READ COMMITTED"))
            yield conn
