"""Kafka topic names, declared once. A prefix isolates one deployment's or one test's topics."""

from dataclasses import dataclass
from enum import StrEnum

RESERVATION_REQUESTED = "reservation.requested"
RESERVATION_PAID = "reservation.paid"
RESERVATION_PAYMENT_FAILED = "reservation.payment_failed"
# A payment arrived for a reservation that can no longer be sold (expired, cancelled, failed).
RESERVATION_REFUND_REQUESTED = "reservation.refund_requested"


class TopicFamily(StrEnum):
    """Topics created alike: each family has its own partitions and replication settings."""

    # The topics the services produce and consume (reservation.*).
    MAIN = "main"
    # The retry ladder's steps, read by the retry consumer.
    RETRY = "retry"
    # Dead letters and their parking topics, read by people and the replay tool.
    DEAD_LETTER = "dead_letter"


@dataclass(frozen=True)
class TopicSpec:
    """How a topic of `family` is created when it does not exist yet."""

    family: TopicFamily
    partitions: int
    replication_factor: int
    # min.insync.replicas of the topic; None leaves the broker's default.
    min_insync_replicas: int | None = None


@dataclass(frozen=True)
class Topics:
    prefix: str = ""

    def name(self, topic: str) -> str:
        """The broker-side name of a logical topic."""
        return f"{self.prefix}{topic}"

    @property
    def reservation_requested(self) -> str:
        return self.name(RESERVATION_REQUESTED)

    @property
    def reservation_paid(self) -> str:
        return self.name(RESERVATION_PAID)

    @property
    def reservation_payment_failed(self) -> str:
        return self.name(RESERVATION_PAYMENT_FAILED)

    @property
    def reservation_refund_requested(self) -> str:
        return self.name(RESERVATION_REFUND_REQUESTED)

    def logical(self, broker_name: str) -> str:
        """The logical topic of a broker-side name (the inverse of `name`)."""
        return broker_name.removeprefix(self.prefix)

    def retry(self, topic: str, attempt: int) -> str:
        """`retry.<topic>.<n>`: where attempt n of a failed message waits to be parked."""
        return self.name(f"retry.{topic}.{attempt}")

    def dead_letter(self, topic: str) -> str:
        return self.name(f"{topic}.dlq")

    def parking(self, topic: str) -> str:
        """Where a replayed dead letter that failed again waits for a person."""
        return self.name(f"{topic}.parking")
