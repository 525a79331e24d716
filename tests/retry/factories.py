"""Small factories for the retry tests."""

from dataclasses import dataclass, field

from ticketing.retry.queue import Parked


@dataclass(frozen=True)
class Record:
    """A consumed Kafka record, as the failure hook sees it."""

    topic: str
    partition: int = 1
    offset: int = 7
    key: bytes | None = b"r1"
    value: bytes | None = b"{}"
    headers: list[tuple[str, bytes]] = field(default_factory=list)


def make_parked(topic: str, n: int, due_at_ms: int = 0, attempt: int = 1) -> Parked:
    """The n-th failed record of `topic`, due at `due_at_ms`, with its value the number n."""
    return Parked(
        member=f"{topic}:0:{n}:{attempt}",
        topic=topic,
        key=f"key-{n % 50}".encode(),
        value=str(n).encode(),
        headers=[("x-retry-attempt", str(attempt).encode())],
        due_at_ms=due_at_ms,
    )
