"""The outbox relay: publishes committed outbox rows to Kafka and marks them sent only after
the broker acknowledged them, so a crash anywhere re-sends rather than loses a message.

A round holds no transaction and no connection while it waits for the broker: it claims a batch
in one short transaction, sends with nothing open, and marks the batch sent in another. A batch
the broker took but the database would not mark (it was away) is marked first thing in the next
round, not re-sent when its claim lapses. A relay that dies mid-send leaves its claim to lapse;
the rows are then sent again (consumers skip a message id they have seen).

Each row of a round counts on its own: what the broker took is marked sent even when another
row failed, and a row the broker refused for good (too large for its topic) is set aside with the
reason instead of being sent again every round, where it would stop its partition's later rows.
"""

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from aiokafka.errors import (
    InvalidTopicError,
    KafkaError,
    MessageSizeTooLargeError,
    RecordListTooLargeError,
)
from aiokafka.structs import RecordMetadata
from prometheus_client import Counter
from sqlalchemy import bindparam, or_, select, text, update
from sqlalchemy.engine import Dialect
from sqlalchemy.ext.asyncio import AsyncEngine
from sqlmodel import col

from ticketing.common.liveness import beat
from ticketing.common.prepared import DriverTransaction, Prepared, PreparedIn, driver_transaction
from ticketing.common.producer import RenewingProducer
from ticketing.common.sqltypes import utcnow
from ticketing.common.topics import Topics
from ticketing.reservation.models import OutboxMessage

log = logging.getLogger(__name__)

# Refusals no resend can cure, as the row itself is at fault; anything else (a broker away, a
# leader moving, a timeout) is sent again in the next round.
REFUSED_FOR_GOOD = (MessageSizeTooLargeError, RecordListTooLargeError, InvalidTopicError)

REFUSED = Counter(
    "ticketing_outbox_refused",
    "Outbox rows the broker refused for good (too large, an invalid topic), set aside unsent.",
    ["topic"],
)


@dataclass(frozen=True)
class OutboxRow:
    id: int
    topic: str
    key: str
    value: bytes


class RelayStatements:
    """The relay's statements, prepared once on the driver (`ticketing.common.prepared`): a round
    runs at least two transactions, and at low rates a round carries one or two rows."""

    def __init__(self, dialect: Dialect, batch_size: int) -> None:
        self.read_committed = Prepared(
            text("SET TRANSACTION ISOLATION LEVEL READ COMMITTED"), dialect
        )
        # SKIP LOCKED lets several replicas claim side by side without claiming the same row.
        self.claimable = Prepared(
            select(
                col(OutboxMessage.id),
                col(OutboxMessage.topic),
                col(OutboxMessage.key),
                col(OutboxMessage.value),
            )
            .where(
                col(OutboxMessage.sent_at).is_(None),
                col(OutboxMessage.refused_at).is_(None),
                or_(
                    col(OutboxMessage.claimed_until).is_(None),
                    col(OutboxMessage.claimed_until) < bindparam("now"),
                ),
            )
            .order_by(col(OutboxMessage.id))
            .limit(batch_size)
            .with_for_update(skip_locked=True),
            dialect,
        )
        self._dialect = dialect
        self._updates: dict[tuple[str, ...], PreparedIn] = {}

    def update(
        self, ids: Sequence[int], values: Mapping[str, object]
    ) -> tuple[Prepared, dict[str, Any]]:
        """An UPDATE of the rows `ids` setting `values`, prepared once for each set of columns."""
        columns = tuple(values)
        if columns not in self._updates:
            self._updates[columns] = PreparedIn(
                lambda listed: update(OutboxMessage).where(col(OutboxMessage.id).in_(listed)),
                self._dialect,
                columns=list(columns),
            )
        return self._updates[columns].over(ids, values)


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
        self._sql = RelayStatements(engine.dialect, batch_size)
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
        """Publish one batch of unsent rows in order; how many the broker took. A round in which
        a send failed still marks what was taken, sets aside what was refused for good, gives the
        rest back at once and raises the first of their failures."""
        if self._sent_unmarked:
            await self._mark(self._sent_unmarked, sent_at=utcnow())
            self._sent_unmarked = []
        rows = await self._claim_batch()
        if not rows:
            return 0
        try:
            errors = await self._send(rows)
            if any(isinstance(error, REFUSED_FOR_GOOD) for error in errors):
                errors = await self._send_again_alone(rows, errors)
        except BaseException:
            # Cancelled, or a failure that is not a send's: sent or not, the rows go back now,
            # not when the claim lapses.
            await self._mark([row.id for row in rows], claimed_until=None)
            raise
        sent = [row.id for row, error in zip(rows, errors, strict=True) if error is None]
        if sent:
            self._sent_unmarked = sent
            await self._mark(sent, sent_at=utcnow())
            self._sent_unmarked = []
        failed: list[tuple[OutboxRow, BaseException]] = []
        for row, error in zip(rows, errors, strict=True):
            if isinstance(error, REFUSED_FOR_GOOD):
                await self._set_aside(row, error)
            elif error is not None:
                failed.append((row, error))
        if failed:
            await self._mark([row.id for row, _ in failed], claimed_until=None)
            raise failed[0][1]
        return len(sent)

    async def _send(self, rows: Sequence[OutboxRow]) -> list[BaseException | None]:
        """Each row's failure, or None where the broker acknowledged it. Rows are handed to the
        producer one after the other, which keeps their order; a failure to hand one over that is
        not the row's own (no metadata for the topic) is the failure of the rest too."""
        loop = asyncio.get_running_loop()
        acks: list[asyncio.Future[RecordMetadata]] = []
        for row in rows:
            try:
                acks.append(await self._hand_over(row))
            except KafkaError as error:
                refused = loop.create_future()
                refused.set_exception(error)
                acks.append(refused)
                if not isinstance(error, REFUSED_FOR_GOOD):
                    acks.extend([refused] * (len(rows) - len(acks)))
                    break
        results = await asyncio.gather(*acks, return_exceptions=True)
        return [result if isinstance(result, BaseException) else None for result in results]

    async def _send_again_alone(
        self, rows: Sequence[OutboxRow], errors: list[BaseException | None]
    ) -> list[BaseException | None]:
        """The rows not taken, sent again one at a time and in order. The broker refuses a batch
        as too large for one of its rows or for all of them together, and then every later batch
        of its partition: only a row refused on its own is refused for good. A failure of another
        kind stops the round there, so no row overtakes an earlier one of its key."""
        outcomes: list[BaseException | None] = []
        stop: BaseException | None = None
        for row, error in zip(rows, errors, strict=True):
            if error is not None:
                error = stop or await self._send_one(row)
                if error is not None and not isinstance(error, REFUSED_FOR_GOOD):
                    stop = error
            outcomes.append(error)
        return outcomes

    async def _send_one(self, row: OutboxRow) -> KafkaError | None:
        try:
            await (await self._hand_over(row))
        except KafkaError as error:
            return error
        return None

    async def _hand_over(self, row: OutboxRow) -> asyncio.Future[RecordMetadata]:
        """The row queued to the producer; the future is done once the broker acknowledged it."""
        return await self._producer.send(
            self._topics.name(row.topic), row.value, key=row.key.encode()
        )

    async def _set_aside(self, row: OutboxRow, error: BaseException) -> None:
        reason = f"{type(error).__name__}: {error}"[:255]
        await self._mark([row.id], refused_at=utcnow(), refused_reason=reason)
        REFUSED.labels(row.topic).inc()
        log.error(
            "the broker refused an outbox message for good; set aside unsent",
            extra={"outbox_id": row.id, "topic": row.topic, "key": row.key, "reason": reason},
        )

    async def _claim_batch(self) -> list[OutboxRow]:
        """The oldest unsent, unclaimed rows, claimed in one short transaction."""
        now = utcnow()
        async with self._read_committed() as transaction:
            rows = [
                OutboxRow(**row) for row in await transaction.all(self._sql.claimable, {"now": now})
            ]
            if rows:
                ids = [row.id for row in rows]
                claim = {"claimed_until": now + self._claim}
                await transaction.execute(*self._sql.update(ids, claim))
        return rows

    async def _mark(self, ids: list[int], **values: object) -> None:
        # At the default isolation: an UPDATE of rows named by their primary key locks those rows
        # and no gap.
        async with driver_transaction(self._engine) as transaction:
            await transaction.execute(*self._sql.update(ids, values))

    @contextlib.asynccontextmanager
    async def _read_committed(self) -> AsyncIterator[DriverTransaction]:
        """A transaction at READ COMMITTED: under REPEATABLE READ the claim's locking read also
        locks the index gap where new rows go, so every hold's INSERT would wait on the claim.

        Set by the transaction's first statement, not by the engine's `isolation_level` option:
        SQLAlchemy runs that option's SET while it hands the connection out, and a relay
        cancelled there (its service stopping) never gave the connection back to the pool.
        """
        async with driver_transaction(self._engine) as transaction:
            await transaction.execute(self._sql.read_committed, {})
            yield transaction
