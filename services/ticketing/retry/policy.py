"""Each consumed topic's retry policy, declared once and used by every part of the ladder."""

import random
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from enum import StrEnum

from ticketing.common.topics import (
    RESERVATION_PAID,
    RESERVATION_PAYMENT_FAILED,
    RESERVATION_REFUND_REQUESTED,
    RESERVATION_REQUESTED,
    TopicFamily,
    Topics,
)


class Backoff(StrEnum):
    FIXED = "fixed"
    EXPONENTIAL = "exponential"


@dataclass(frozen=True)
class RetryPolicy:
    """How often and how patiently a failed message is tried again.

    `attempts` counts every delivery, the first one included: with 3, a message is retried
    twice and dead-lettered when the third delivery fails too.
    """

    attempts: int
    base_delay_s: float
    backoff: Backoff = Backoff.EXPONENTIAL
    max_delay_s: float = 300.0
    # Fraction of the delay drawn at random, so a burst of failures does not return as a burst.
    jitter: float = 0.0

    def __post_init__(self) -> None:
        if self.attempts < 1:
            raise ValueError("attempts must be at least 1")
        if not 0 <= self.jitter <= 1:
            raise ValueError("jitter must be between 0 and 1")
        if self.base_delay_s < 0 or self.max_delay_s < self.base_delay_s:
            raise ValueError("delays must satisfy 0 <= base_delay_s <= max_delay_s")

    @property
    def retries(self) -> int:
        return self.attempts - 1

    def delay_s(self, retry: int, rand: Callable[[], float] = random.random) -> float:
        """Seconds to wait before retry number `retry` (1 for the first retry)."""
        if self.backoff is Backoff.FIXED:
            delay = self.base_delay_s
        else:
            delay = self.base_delay_s * 2 ** (retry - 1)
        delay = min(delay, self.max_delay_s)
        return delay * (1 - self.jitter * rand())


POLICIES: Mapping[str, RetryPolicy] = {
    # A reservation request waits on MySQL and Redis: short, quick retries.
    RESERVATION_REQUESTED: RetryPolicy(attempts=5, base_delay_s=1.0, max_delay_s=30.0, jitter=0.2),
    # Payment results must not be lost: more attempts, spread over several minutes.
    RESERVATION_PAID: RetryPolicy(attempts=8, base_delay_s=2.0, max_delay_s=120.0, jitter=0.2),
    RESERVATION_PAYMENT_FAILED: RetryPolicy(
        attempts=8, base_delay_s=2.0, max_delay_s=120.0, jitter=0.2
    ),
    # A refund owed to a buyer: patient, a payment provider may be down for a while.
    RESERVATION_REFUND_REQUESTED: RetryPolicy(
        attempts=10, base_delay_s=5.0, max_delay_s=600.0, jitter=0.2
    ),
}


def ladder_topics(
    topics: Topics, policies: Mapping[str, RetryPolicy] = POLICIES
) -> dict[str, TopicFamily]:
    """Every broker-side topic the ladder writes to, with its family: retry steps, dead letters
    and parking."""
    families: dict[str, TopicFamily] = {}
    for topic, policy in policies.items():
        families |= dict.fromkeys(
            (topics.retry(topic, n) for n in range(1, policy.attempts)), TopicFamily.RETRY
        )
        families |= dict.fromkeys(
            (topics.dead_letter(topic), topics.parking(topic)), TopicFamily.DEAD_LETTER
        )
    return families


def retry_topics(topics: Topics, policies: Mapping[str, RetryPolicy] = POLICIES) -> list[str]:
    """The retry steps the retry consumer reads."""
    return [
        topics.retry(topic, n)
        for topic, policy in policies.items()
        for n in range(1, policy.attempts)
    ]
