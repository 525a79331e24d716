"""What happens to a message whose handler failed: the next retry step, dead letter, or parking.

`RetryFailureHandler` is the consumer's failure hook. It decides from the error and the
message's retry headers, sends the message on, and returns only after the broker acknowledged,
so the consumer may commit the failed record's offset.
"""

import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import Protocol

from ticketing.common.errors import is_retriable
from ticketing.common.producer import RenewingProducer
from ticketing.common.topics import Topics
from ticketing.retry import metrics
from ticketing.retry.headers import Failure, Headers, RetryState, decode, encode
from ticketing.retry.policy import POLICIES, RetryPolicy


class FailedRecord(Protocol):
    """The parts of a Kafka consumer record the ladder uses (aiokafka's ConsumerRecord has them)."""

    @property
    def topic(self) -> str: ...
    @property
    def partition(self) -> int: ...
    @property
    def offset(self) -> int: ...
    @property
    def key(self) -> bytes | None: ...
    @property
    def value(self) -> bytes | None: ...
    @property
    def headers(self) -> Sequence[tuple[str, bytes]]: ...


class NoRetryPolicy(LookupError):
    """A consumed topic has no declared retry policy."""


class Destination(StrEnum):
    RETRY = "retry"
    DEAD_LETTER = "dead_letter"
    PARKING = "parking"


@dataclass(frozen=True)
class Route:
    destination: Destination
    topic: str
    headers: Headers


def route(
    record: FailedRecord,
    error: BaseException,
    group: str,
    topics: Topics,
    policies: Mapping[str, RetryPolicy],
    now_ms: int,
) -> Route:
    """Where a failed record goes next, with the headers it carries there."""
    own, state = decode(record.headers)
    if state is None:
        state = RetryState(record.topic, record.partition, record.offset, history=())
    logical = topics.logical(state.original_topic)
    policy = policies.get(logical)
    if policy is None:
        raise NoRetryPolicy(f"no retry policy for topic {logical!r}; declare it in POLICIES")
    failure = Failure.of(error, state.attempt + 1, now_ms, group)
    if state.replay:
        return Route(
            Destination.PARKING, topics.parking(logical), encode(own, state.failed(failure))
        )
    retry = state.attempt + 1
    if not is_retriable(error) or retry >= policy.attempts:
        return Route(
            Destination.DEAD_LETTER, topics.dead_letter(logical), encode(own, state.failed(failure))
        )
    due = now_ms + round(policy.delay_s(retry) * 1000)
    return Route(
        Destination.RETRY, topics.retry(logical, retry), encode(own, state.failed(failure, due))
    )


class RetryFailureHandler:
    """The consumer's failure hook: sends a failed record one step down the ladder."""

    def __init__(
        self,
        producer: RenewingProducer,
        topics: Topics,
        group: str,
        policies: Mapping[str, RetryPolicy] = POLICIES,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._producer = producer
        self._topics = topics
        self._group = group
        self._policies = policies
        self._clock = clock

    async def __call__(self, record: FailedRecord, error: BaseException) -> None:
        now_ms = int(self._clock() * 1000)
        step = route(record, error, self._group, self._topics, self._policies, now_ms)
        # Same key as the original, so the retries of one reservation share a partition.
        await self._producer.send_and_wait(
            step.topic, value=record.value, key=record.key, headers=step.headers
        )
        origin = record.topic
        counter = {
            Destination.RETRY: metrics.RETRIES,
            Destination.DEAD_LETTER: metrics.DEAD_LETTERED,
            Destination.PARKING: metrics.PARKED_FOR_PEOPLE,
        }[step.destination]
        counter.labels(topic=origin).inc()
