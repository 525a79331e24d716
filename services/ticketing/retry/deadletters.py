"""Reading, replaying and purging a topic's dead letters.

Kafka cannot delete single records, so "replayed" and "purged" are remembered per dead letter
(`partition:offset`) in a Redis set; listing skips them unless asked, and a replay never sends
the same dead letter twice. The topic's retention removes the records themselves.
"""

import asyncio
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from aiokafka import AIOKafkaConsumer, TopicPartition

from ticketing.common.producer import RenewingProducer
from ticketing.common.redis_client import RedisClient
from ticketing.common.redis_keys import RetryKeys
from ticketing.common.topics import Topics
from ticketing.retry.headers import Headers, RetryState, as_replay, decode


@dataclass(frozen=True)
class DeadLetter:
    partition: int
    offset: int
    timestamp_ms: int
    key: bytes | None
    value: bytes | None
    own_headers: Headers
    state: RetryState | None
    resolved: bool

    @property
    def position(self) -> str:
        return f"{self.partition}:{self.offset}"

    @property
    def error_class(self) -> str | None:
        return self.state.last.error_class if self.state and self.state.history else None


@dataclass(frozen=True)
class Selection:
    """Which dead letters a command applies to; every given criterion must hold."""

    key: str | None = None
    error_class: str | None = None
    since_ms: int | None = None
    until_ms: int | None = None
    position: str | None = None
    include_resolved: bool = False

    def matches(self, letter: DeadLetter) -> bool:
        return (
            (self.include_resolved or not letter.resolved)
            and (self.key is None or letter.key == self.key.encode())
            and (self.error_class is None or letter.error_class == self.error_class)
            and (self.since_ms is None or letter.timestamp_ms >= self.since_ms)
            and (self.until_ms is None or letter.timestamp_ms < self.until_ms)
            and (self.position is None or letter.position == self.position)
        )


class DeadLetters:
    """The dead letters of one logical topic (e.g. `reservation.paid`)."""

    def __init__(
        self,
        bootstrap: str,
        client: RedisClient,
        redis_key_prefix: str,
        topics: Topics,
        topic: str,
    ) -> None:
        self._bootstrap = bootstrap
        self._redis = client
        self._topics = topics
        self._topic = topic
        self.dead_letter_topic = topics.dead_letter(topic)
        self._resolved = RetryKeys(redis_key_prefix).dead_letters_resolved(self.dead_letter_topic)

    async def select(self, selection: Selection) -> list[DeadLetter]:
        resolved = {_text(m) for m in await self._redis.smembers(self._resolved)}
        letters = [
            _dead_letter(record, resolved)
            for record in await read_topic(self._bootstrap, self.dead_letter_topic)
        ]
        return [letter for letter in letters if selection.matches(letter)]

    async def replay(self, letters: Sequence[DeadLetter], producer: RenewingProducer) -> int:
        """Send the dead letters back to their topic, marked so that one more failure parks them."""
        target = self._topics.name(self._topic)
        for letter in letters:
            state = letter.state or RetryState(target, letter.partition, letter.offset, ())
            await producer.send_and_wait(
                target,
                value=letter.value,
                key=letter.key,
                headers=as_replay(letter.own_headers, state),
            )
            # Marked only after the broker acknowledged: a crash in between replays it again,
            # which the consumer's idempotency absorbs.
            await self._redis.sadd(self._resolved, letter.position)
        return len(letters)

    async def purge(self, letters: Sequence[DeadLetter]) -> int:
        if letters:
            await self._redis.sadd(self._resolved, *(letter.position for letter in letters))
        return len(letters)


async def read_topic(bootstrap: str, topic: str) -> list[Any]:
    """Every record in `topic` up to its current end, in partition and offset order.

    Reads without a consumer group, so looking commits nothing and disturbs no consumer.
    """
    consumer = AIOKafkaConsumer(
        topic, bootstrap_servers=bootstrap, enable_auto_commit=False, auto_offset_reset="earliest"
    )
    await consumer.start()
    try:
        # Without a group, a subscription is assigned every partition once metadata arrived.
        partitions = consumer.partitions_for_topic(topic) or set()
        assigned = [TopicPartition(topic, p) for p in sorted(partitions)]
        if not assigned:
            return []
        await consumer.seek_to_beginning(*assigned)
        ends = await consumer.end_offsets(assigned)
        records: list[Any] = []
        async with asyncio.timeout(60):
            while [tp for tp in assigned if await consumer.position(tp) < ends[tp]]:
                batch = await consumer.getmany(timeout_ms=500)
                # Records that arrived after we looked at the end wait for the next reading.
                records += [r for tp, rs in batch.items() for r in rs if r.offset < ends[tp]]
        return sorted(records, key=lambda r: (r.partition, r.offset))
    finally:
        await consumer.stop()


def _dead_letter(record: Any, resolved: set[str]) -> DeadLetter:
    own, state = decode(record.headers or ())
    return DeadLetter(
        partition=record.partition,
        offset=record.offset,
        timestamp_ms=record.timestamp,
        key=record.key,
        value=record.value,
        own_headers=own,
        state=state,
        resolved=f"{record.partition}:{record.offset}" in resolved,
    )


def _text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value
