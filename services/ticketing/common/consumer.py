"""The Kafka consumer runner every consumer uses: decode the envelope, skip what this group
already applied, run the handler, hand failures to a hook, and commit only after the work.

Records are handled as they arrive, not batch by batch: a record fetched while others are still
being handled starts at once (per key in order), and a background commit moves each partition's
offset only past the records whose handling finished, so a slow one delays no one else's work,
only the commit.

Idempotency is kept in Redis (`ProcessedIds`: time-bucketed sets per group, an id remembered for
the dedup window), marked after the handler succeeded and before the offset commit. A handler's
work spans MySQL and Redis, so no single transaction could cover "apply + mark processed";
instead every handler is idempotent on its own (state machines under a row lock, UNIQUE keys),
and the processed ids only save the work of applying a duplicate again. A crash between the work
and the mark is therefore harmless, and so is a duplicate that returns after the window.
"""

import asyncio
import heapq
import logging
from collections import deque
from collections.abc import Awaitable, Callable, Sequence
from typing import Any, Protocol

from aiokafka import AIOKafkaConsumer, ConsumerRebalanceListener, TopicPartition
from aiokafka.errors import KafkaError
from prometheus_client import Counter

from ticketing.common.dedup import ProcessedIds
from ticketing.common.envelope import Envelope
from ticketing.common.kafka import CONSUMER_METADATA_MAX_AGE_MS
from ticketing.common.liveness import beat
from ticketing.common.observability import message_context
from ticketing.common.redis_client import RedisClient

log = logging.getLogger(__name__)

MESSAGES = Counter(
    "ticketing_messages_total",
    "Kafka messages handled, by consumer group, topic and outcome (applied, duplicate, failed).",
    ["group", "topic", "outcome"],
)

Handler = Callable[[Envelope], Awaitable[None]]


class FailureHandler(Protocol):
    """Decides where a message whose handling failed goes next (retry topic, dead letters).

    If it raises, the message is neither committed nor dropped: the runner handles it again after
    a pause, and later messages with its key wait for it.
    """

    async def __call__(self, record: Any, error: BaseException) -> None: ...


class PartitionProgress:
    """The offsets of one partition handed to handlers, in order. The commit position is just past
    the longest finished prefix, so a commit never passes a record still being handled."""

    def __init__(self) -> None:
        self._open: deque[int] = deque()
        self._finished: set[int] = set()
        self._position: int | None = None
        self._committed: int | None = None

    def started(self, offset: int) -> None:
        self._open.append(offset)

    def finished(self, offset: int) -> None:
        self._finished.add(offset)
        while self._open and self._open[0] in self._finished:
            first = self._open.popleft()
            self._finished.discard(first)
            self._position = first + 1

    def to_commit(self) -> int | None:
        """The offset to commit, or None if the last commit is still current."""
        return None if self._position == self._committed else self._position

    def committed(self, offset: int) -> None:
        self._committed = offset


class _Rebalance(ConsumerRebalanceListener):  # type: ignore[misc]  # aiokafka is untyped
    def __init__(
        self,
        revoked: Callable[[list[TopicPartition]], Awaitable[None]],
        assigned: Callable[[list[TopicPartition]], None],
    ) -> None:
        self._revoked = revoked
        self._assigned = assigned

    async def on_partitions_revoked(self, revoked: list[TopicPartition]) -> None:
        await self._revoked(revoked)

    async def on_partitions_assigned(self, assigned: list[TopicPartition]) -> None:
        self._assigned(assigned)


class ConsumerRunner:
    """Runs one consumer group member until cancelled.

    Messages with the same key (one reservation) are handled in order, across the topics it
    consumes; different keys concurrently, at most `max_in_flight` at a time.
    """

    def __init__(
        self,
        *,
        bootstrap: str,
        group: str,
        topics: Sequence[str],
        handler: Handler,
        failure_handler: FailureHandler,
        redis: RedisClient,
        redis_prefix: str,
        dedup_window_seconds: int,
        max_in_flight: int = 100,
        commit_interval_seconds: float = 0.2,
        stuck_backoff_seconds: float = 1.0,
    ) -> None:
        self._bootstrap = bootstrap
        self._group = group
        self._topics = list(topics)
        self._handler = handler
        self._failure_handler = failure_handler
        self._processed = ProcessedIds(redis, redis_prefix, group, dedup_window_seconds)
        self._max_in_flight = max_in_flight
        self._commit_interval = commit_interval_seconds
        self._stuck_backoff = stuck_backoff_seconds
        self._slots = asyncio.Semaphore(max_in_flight)
        self._progress: dict[TopicPartition, PartitionProgress] = {}
        # The last task of each key: the next message of that key waits for it, whatever its
        # topic, so one reservation's messages are handled in the order they were fetched.
        # Messages without a key are ordered per partition.
        self._tails: dict[bytes | TopicPartition, asyncio.Task[None]] = {}
        self._tasks: set[asyncio.Task[None]] = set()

    async def run(self) -> None:
        consumer = AIOKafkaConsumer(
            bootstrap_servers=self._bootstrap,
            group_id=self._group,
            enable_auto_commit=False,
            auto_offset_reset="earliest",
            metadata_max_age_ms=CONSUMER_METADATA_MAX_AGE_MS,
        )

        async def revoked(partitions: list[TopicPartition]) -> None:
            # Hand the next owner everything finished here, so it re-reads as little as possible.
            await self._commit(consumer)
            for tp in partitions:
                self._progress.pop(tp, None)

        def assigned(partitions: list[TopicPartition]) -> None:
            # Fetching restarts from the committed offsets: what was in flight here comes again
            # (after its first delivery, by the key order) and is skipped as a duplicate.
            for tp in partitions:
                self._progress[tp] = PartitionProgress()

        consumer.subscribe(self._topics, listener=_Rebalance(revoked, assigned))
        committer: asyncio.Task[None] | None = None
        try:
            # Inside the try: a service stopped while the consumer is still joining its group
            # must close it too, or its connections leak.
            await _start_to_the_end(consumer)
            committer = asyncio.create_task(self._commit_forever(consumer))
            while True:
                beat()
                batch = await consumer.getmany(timeout_ms=500, max_records=self._max_in_flight)
                # One key's messages may sit on several topics of one batch: start them in the
                # order they were produced, each partition's still in offset order.
                for record in heapq.merge(*batch.values(), key=lambda r: r.timestamp):
                    tp = TopicPartition(record.topic, record.partition)
                    await self._slots.acquire()
                    self._start(tp, self._progress.setdefault(tp, PartitionProgress()), record)
        finally:
            for task in [*self._tasks, *([committer] if committer else [])]:
                task.cancel()
            await asyncio.gather(*self._tasks, return_exceptions=True)
            await consumer.stop()

    def _start(self, tp: TopicPartition, progress: PartitionProgress, record: Any) -> None:
        progress.started(record.offset)
        chain = tp if record.key is None else record.key
        task = asyncio.create_task(self._after(self._tails.get(chain), record, progress))
        self._tails[chain] = task
        self._tasks.add(task)

        def forget(done: asyncio.Task[None]) -> None:
            self._tasks.discard(done)
            if self._tails.get(chain) is done:
                del self._tails[chain]

        task.add_done_callback(forget)

    async def _after(
        self, previous: asyncio.Task[None] | None, record: Any, progress: PartitionProgress
    ) -> None:
        """Handle `record` once the previous message of its key is done."""
        try:
            if previous is not None:
                await asyncio.wait([previous])
            # When even the failure hook could not place it, keep it, and its key, until it can.
            while True:
                if await self._one(record):
                    break
                await asyncio.sleep(self._stuck_backoff)
            progress.finished(record.offset)
        finally:
            self._slots.release()

    async def _one(self, record: Any) -> bool:
        """Handle one message; False only when even the failure hook failed."""
        try:
            envelope = Envelope.from_bytes(record.value)
            with message_context(envelope.message_id):
                if await self._processed.seen(envelope.message_id):
                    MESSAGES.labels(self._group, record.topic, "duplicate").inc()
                    return True
                await self._handler(envelope)
                await self._processed.mark(envelope.message_id)
            MESSAGES.labels(self._group, record.topic, "applied").inc()
            return True
        # Any failure, ours or a library's, goes to the hook: one bad message must not stop
        # the consumer, and the hook decides between retrying and dead letters.
        except Exception as error:  # noqa: BLE001
            MESSAGES.labels(self._group, record.topic, "failed").inc()
            log.warning(
                "message handling failed",
                extra={"topic": record.topic, "offset": record.offset, "error": repr(error)},
            )
            try:
                await self._failure_handler(record, error)
            except Exception:
                log.exception("failure hook failed; the message will be handled again")
                return False
            return True

    async def _commit_forever(self, consumer: AIOKafkaConsumer) -> None:
        while True:
            await asyncio.sleep(self._commit_interval)
            await self._commit(consumer)

    async def _commit(self, consumer: AIOKafkaConsumer) -> None:
        due = [
            (tp, progress, offset)
            for tp, progress in self._progress.items()
            if (offset := progress.to_commit()) is not None
        ]
        if not due:
            return
        try:
            await consumer.commit({tp: offset for tp, _, offset in due})
        except KafkaError as exc:
            # A rebalance took a partition away; its new owner re-reads from the last commit
            # and skips what was applied, so nothing is lost.
            log.warning("offset commit failed", extra={"error": repr(exc)})
            return
        for _, progress, offset in due:
            progress.committed(offset)


async def _start_to_the_end(consumer: AIOKafkaConsumer) -> None:
    """`consumer.start()`, carried to its end even when the caller is cancelled meanwhile.

    aiokafka's bootstrap, cancelled between opening its first connection and closing it, leaves
    that connection open for the garbage collector (found in tests that stop a service a moment
    after starting it). So a stop that arrives during the start waits for the start, which is
    bounded by the client's request timeout, and the caller then stops the consumer.
    """
    starting = asyncio.ensure_future(consumer.start())
    try:
        await asyncio.shield(starting)
    except asyncio.CancelledError:
        await asyncio.wait([starting])
        if not starting.cancelled():
            starting.exception()  # retrieved: the stop that follows is what matters now
        raise
