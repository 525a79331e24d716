"""What the crowd saw while it ran: step latencies, outcomes, admissions, reservations, errors."""

import time
from collections import Counter
from dataclasses import dataclass, field

from loadtest.report.record import QueueSample


@dataclass
class SeenReservation:
    """A reservation as its buyer saw it: the seats asked for and the last status read."""

    seat_ids: list[str]
    status: str = "PENDING"


@dataclass
class Recorder:
    started: float = field(default_factory=time.monotonic)
    latencies_ms: dict[str, list[float]] = field(default_factory=dict)
    outcomes: Counter[str] = field(default_factory=Counter)
    admissions: list[float] = field(default_factory=list)
    positions: list[int] = field(default_factory=list)
    queue: list[QueueSample] = field(default_factory=list)
    reservations: dict[str, SeenReservation] = field(default_factory=dict)
    requests: int = 0
    errors: int = 0
    arrived: int = 0
    # People in line and admitted people still shopping, as the crowd counts them.
    waiting: int = 0
    active: int = 0

    def now(self) -> float:
        """Seconds since the crowd started."""
        return time.monotonic() - self.started

    def latency(self, step: str, since: float) -> None:
        """Record a step that began at `since` (a `time.monotonic()` reading) and just ended."""
        self.latencies_ms.setdefault(step, []).append((time.monotonic() - since) * 1000)

    def answer(self, ok: bool) -> None:
        self.requests += 1
        if not ok:
            self.errors += 1

    def admitted(self) -> None:
        self.admissions.append(self.now())

    def sample_queue(self) -> None:
        self.queue.append(QueueSample(t=self.now(), waiting=self.waiting, active=self.active))

    def outcome(self, name: str) -> None:
        self.outcomes[name] += 1
