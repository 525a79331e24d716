"""The retry consumer: reads every retry step and parks each message in the Redis delay queue.

It commits a batch's offsets only after the batch is parked, and reads a batch it could not park
(Redis away) again; a batch read twice (a crash between parking and committing) is parked once,
because each retry step of each original record has its own member in the queue.
"""

import asyncio
import logging
from collections.abc import Iterable, Mapping
from typing import Any

from aiokafka import AIOKafkaConsumer

from ticketing.common.kafka import CONSUMER_METADATA_MAX_AGE_MS
from ticketing.common.liveness import beat
from ticketing.common.redis_client import REDIS_UNAVAILABLE
from ticketing.common.topics import Topics
from ticketing.retry.failure import FailedRecord
from ticketing.retry.headers import decode
from ticketing.retry.policy import POLICIES, RetryPolicy, retry_topics
from ticketing.retry.queue import DelayQueue, Parked

log = logging.getLogger(__name__)


def consumer_group(topics: Topics) -> str:
    return topics.name("retry-consumer")


def make_retry_consumer(
    bootstrap: str, topics: Topics, policies: Mapping[str, RetryPolicy] = POLICIES
) -> Any:
    return AIOKafkaConsumer(
        *retry_topics(topics, policies),
        bootstrap_servers=bootstrap,
        group_id=consumer_group(topics),
        auto_offset_reset="earliest",
        enable_auto_commit=False,
        metadata_max_age_ms=CONSUMER_METADATA_MAX_AGE_MS,
    )


def to_parked(records: Iterable[FailedRecord]) -> list[Parked]:
    parked = []
    for record in records:
        _, state = decode(record.headers)
        if state is None:
            # Only the ladder writes retry steps; a record without its headers has no way back.
            log.error(
                "retry record without retry headers skipped",
                extra={
                    "topic": record.topic,
                    "partition": record.partition,
                    "offset": record.offset,
                },
            )
            continue
        parked.append(
            Parked(
                member=state.member,
                topic=state.original_topic,
                key=record.key,
                value=record.value,
                headers=list(record.headers),
                due_at_ms=state.due_at_ms,
            )
        )
    return parked


async def run_retry_consumer(
    consumer: Any, queue: DelayQueue, stop: asyncio.Event, park_backoff_s: float = 0.5
) -> None:
    """Park what arrives on the retry steps until `stop` is set; `consumer` is started."""
    while not stop.is_set():
        beat()
        batches: dict[Any, list[FailedRecord]] = await consumer.getmany(timeout_ms=200)
        if not batches:
            continue
        try:
            await queue.park(to_parked(r for records in batches.values() for r in records))
        except REDIS_UNAVAILABLE as exc:
            # Redis is away (a restart, a failover): the batch is neither committed nor
            # dropped. The consumer's position already passed it, so rewind and read it again;
            # exiting instead would leave no one parking until the process is restarted.
            log.warning("parking failed; the batch is read again", extra={"error": repr(exc)})
            for tp, records in batches.items():
                consumer.seek(tp, records[0].offset)
            await asyncio.sleep(park_backoff_s)
            continue
        await consumer.commit()
