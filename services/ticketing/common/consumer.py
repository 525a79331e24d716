"""The Kafka consumer runner every consumer uses: decode the envelope, skip what this group
already applied, run the handler, hand failures to a hook, and commit only after the work.

Idempotency is kept in Redis (`processed_key`, one set per group), marked after the handler
succeeded and before the offset commit. A handler's work spans MySQL and Redis, so no single
transaction could cover "apply + mark processed"; instead every handler is idempotent on its
own (state machines under a row lock, UNIQUE keys), and the processed set only saves the work
of applying a duplicate again. A crash between the work and the mark is therefore harmless.
"""

import asyncio
import logging
from collections.abc import Awaitable, Callable, Sequence
from typing import Any, Protocol

import redis.asyncio as aioredis
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.errors import KafkaError
from prometheus_client import Counter

from ticketing.common.envelope import Envelope
from ticketing.common.errors import is_retriable
from ticketing.common.observability import message_context
from ticketing.common.redis_keys import processed_key
from ticketing.common.topics import Topics

log = logging.getLogger(__name__)

MESSAGES = Counter(
    "ticketing_messages_total",
    "Kafka messages handled, by consumer group, topic and outcome (applied, duplicate, failed).",
    ["group", "topic", "outcome"],
)

Handler = Callable[[Envelope], Awaitable[None]]

# The processed set of a group that stops consuming disappears after a week.
PROCESSED_TTL_SECONDS = 7 * 24 * 3600


class FailureHandler(Protocol):
    """Decides where a message whose handling failed goes next (retry topic, dead letters).

    If it raises, the message is neither committed nor dropped: the runner consumes it again.
    """

    async def __call__(self, record: Any, error: BaseException) -> None: ...


class DeadLetterOnFailure:
    """The default hook: log the failure and publish the record unchanged to `<topic>.dlq`."""

    def __init__(self, producer: AIOKafkaProducer, topics: Topics, group: str) -> None:
        self._producer = producer
        self._topics = topics
        self._group = group

    async def __call__(self, record: Any, error: BaseException) -> None:
        target = self._topics.dead_letter(self._topics.logical(record.topic))
        log.error(
            "message failed, sent to the dead-letter topic",
            extra={"topic": record.topic, "offset": record.offset, "error": str(error)},
        )
        headers = [
            *(record.headers or ()),
            ("x-error-class", type(error).__qualname__.encode()),
            ("x-error-message", str(error)[:1000].encode()),
            ("x-error-retriable", b"1" if is_retriable(error) else b"0"),
            ("x-original-topic", record.topic.encode()),
            ("x-original-offset", str(record.offset).encode()),
            ("x-group", self._group.encode()),
        ]
        await self._producer.send_and_wait(
            target, record.value, key=record.key, headers=list(headers)
        )


class ConsumerRunner:
    """Runs one consumer group member until cancelled.

    Partitions of a batch are handled concurrently; within a partition, messages with the same
    key (one reservation) are handled in order and different keys concurrently.
    """

    def __init__(
        self,
        *,
        bootstrap: str,
        group: str,
        topics: Sequence[str],
        handler: Handler,
        failure_handler: FailureHandler,
        redis: aioredis.Redis,
        redis_prefix: str,
        max_batch: int = 100,
        stuck_backoff_seconds: float = 1.0,
    ) -> None:
        self._bootstrap = bootstrap
        self._group = group
        self._topics = list(topics)
        self._handler = handler
        self._failure_handler = failure_handler
        self._redis = redis
        self._processed = processed_key(redis_prefix, group)
        self._max_batch = max_batch
        self._stuck_backoff = stuck_backoff_seconds

    async def run(self) -> None:
        consumer = AIOKafkaConsumer(
            *self._topics,
            bootstrap_servers=self._bootstrap,
            group_id=self._group,
            enable_auto_commit=False,
            auto_offset_reset="earliest",
        )
        try:
            # Inside the try: a service stopped while the consumer is still joining its group
            # must close it too, or its connections leak.
            await consumer.start()
            while True:
                batch = await consumer.getmany(timeout_ms=500, max_records=self._max_batch)
                await asyncio.gather(
                    *(self._partition(consumer, tp, records) for tp, records in batch.items())
                )
        finally:
            await consumer.stop()

    async def _partition(
        self, consumer: AIOKafkaConsumer, tp: TopicPartition, records: list[Any]
    ) -> None:
        by_key: dict[bytes | None, list[Any]] = {}
        for record in records:
            by_key.setdefault(record.key, []).append(record)
        stuck = [
            offset
            for offset in await asyncio.gather(*(self._in_order(rs) for rs in by_key.values()))
            if offset is not None
        ]
        if stuck:
            # The failure hook could not place a message: consume it again from there. Later
            # messages already applied come back too and are skipped as duplicates.
            first = min(stuck)
            if first > records[0].offset:
                await self._commit(consumer, tp, first)
            consumer.seek(tp, first)
            await asyncio.sleep(self._stuck_backoff)
        else:
            await self._commit(consumer, tp, records[-1].offset + 1)

    async def _in_order(self, records: list[Any]) -> int | None:
        """Handle one key's messages in order; the offset of the first that could not be placed."""
        for record in records:
            if not await self._one(record):
                return int(record.offset)
        return None

    async def _one(self, record: Any) -> bool:
        """Handle one message; False only when even the failure hook failed."""
        try:
            envelope = Envelope.from_bytes(record.value)
            with message_context(envelope.message_id):
                if await self._redis.sismember(self._processed, envelope.message_id):
                    MESSAGES.labels(self._group, record.topic, "duplicate").inc()
                    return True
                await self._handler(envelope)
                async with self._redis.pipeline(transaction=True) as pipe:
                    pipe.sadd(self._processed, envelope.message_id)
                    pipe.expire(self._processed, PROCESSED_TTL_SECONDS)
                    await pipe.execute()
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
                log.exception("failure hook failed; the message will be consumed again")
                return False
            return True

    async def _commit(self, consumer: AIOKafkaConsumer, tp: TopicPartition, offset: int) -> None:
        try:
            await consumer.commit({tp: offset})
        except KafkaError as exc:
            # A rebalance took the partition away; its new owner re-reads from the last commit
            # and skips what was applied, so nothing is lost.
            log.warning("offset commit failed", extra={"partition": str(tp), "error": repr(exc)})
