"""Liveness that means alive: every background loop beats once a round, and `/healthz` fails
while one has not beaten within the period it states, so a wedged or dead loop gets its pod
restarted instead of only taken out of rotation.

A loop calls `beat()`; which heartbeat that marks comes from the task's context, set when
`background()` started it, so a loop needs no object passed in to report.
"""

import time
from contextvars import ContextVar
from dataclasses import dataclass, field

_CURRENT: ContextVar["Heartbeat | None"] = ContextVar("ticketing_heartbeat", default=None)


@dataclass
class Heartbeat:
    name: str
    period_seconds: float
    last: float = field(default_factory=time.monotonic)

    def beat(self) -> None:
        self.last = time.monotonic()


@dataclass
class Heartbeats:
    """A process's loops and their last beats."""

    loops: dict[str, Heartbeat] = field(default_factory=dict)

    def add(self, name: str, period_seconds: float) -> Heartbeat:
        heartbeat = self.loops[name] = Heartbeat(name, period_seconds)
        return heartbeat

    def late(self) -> dict[str, str]:
        """The loops that have not beaten within their period, each with how long it has been."""
        now = time.monotonic()
        return {
            name: f"no round for {now - loop.last:.1f} s (period {loop.period_seconds:g} s)"
            for name, loop in self.loops.items()
            if now - loop.last > loop.period_seconds
        }


def current(heartbeat: Heartbeat) -> None:
    """Make `heartbeat` the one `beat()` marks in this context (a task's, when run in it)."""
    _CURRENT.set(heartbeat)


def beat() -> None:
    """The calling loop finished a round."""
    if (heartbeat := _CURRENT.get()) is not None:
        heartbeat.beat()
