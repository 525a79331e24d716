"""What the crowd saw while it ran: step latencies, outcomes, admissions, reservations, errors."""

import time
from collections import Counter
from dataclasses import dataclass, field

from pydantic import TypeAdapter

from loadtest.crowd.client import Place
from loadtest.report.record import QueueSample


@dataclass
class SeenReservation:
    """A reservation as its buyer saw it: the seats asked for and the last status read."""

    seat_ids: list[str]
    status: str = "PENDING"


# The reservations a crowd was given, by id, as JSON: how Locust hands them to the audit.
SEEN_RESERVATIONS = TypeAdapter(dict[str, SeenReservation])


@dataclass
class Recorder:
    started: float = field(default_factory=time.monotonic)
    latencies_ms: dict[str, list[float]] = field(default_factory=dict)
    outcomes: Counter[str] = field(default_factory=Counter)
    failures: Counter[str] = field(default_factory=Counter)
    admissions: list[float] = field(default_factory=list)
    arrivals: list[float] = field(default_factory=list)
    positions: list[int] = field(default_factory=list)
    queue: list[QueueSample] = field(default_factory=list)
    reservations: dict[str, SeenReservation] = field(default_factory=dict)
    requests: int = 0
    errors: int = 0
    arrived: int = 0
    # People in line and admitted people still shopping, as the crowd counts them.
    waiting: int = 0
    active: int = 0
    # The same as the queue service last reported them, when it did.
    server_waiting: int | None = None
    server_active: int | None = None

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

    def arrive(self) -> None:
        self.arrived += 1
        self.arrivals.append(self.now())

    def admitted(self) -> None:
        self.admissions.append(self.now())

    def saw(self, place: Place) -> None:
        """Note what a queue answer says about the line."""
        if place.position is not None:
            self.positions.append(place.position)
        if place.waiting is not None:
            self.server_waiting = place.waiting
        if place.active is not None:
            self.server_active = place.active

    def sample_queue(self) -> None:
        """The line now: the server's figures when it gave some, else the crowd's own count."""
        waiting = self.server_waiting if self.server_waiting is not None else self.waiting
        active = self.server_active if self.server_active is not None else self.active
        self.queue.append(QueueSample(t=self.now(), waiting=waiting, active=active))

    def failed(self, reason: str) -> None:
        """An error worth reading in the report, counted by its (short) reason."""
        self.failures[reason[:120]] += 1

    def outcome(self, name: str) -> None:
        self.outcomes[name] += 1

    def merge(self, other: "Recorder") -> None:
        """Add what another crowd process recorded (on the same clock) to this record."""
        for step, values in other.latencies_ms.items():
            self.latencies_ms.setdefault(step, []).extend(values)
        self.outcomes.update(other.outcomes)
        self.failures.update(other.failures)
        self.admissions.extend(other.admissions)
        self.arrivals.extend(other.arrivals)
        self.positions.extend(other.positions)
        self.reservations.update(other.reservations)
        self.requests += other.requests
        self.errors += other.errors
        self.arrived += other.arrived
