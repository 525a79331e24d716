"""Each waiting user's position and ETA, computed from one per-tick read of the sale's state.

Tickets are handed out in order and admission always takes the lowest, so the number of people
ahead of ticket t is the tickets between the "now serving" cursor and t, minus the tickets given
up in between (abandonment records them in `removed`). No per-user Redis read is needed.
"""

import time
from bisect import bisect_left
from collections import deque
from dataclasses import dataclass

from ticketing.queue.store import QueueState


def position(state: QueueState, ticket: int) -> int | None:
    """1 for the next person served; None when the ticket's turn has come."""
    if ticket <= state.cursor:
        return None
    # `removed` holds only tickets above the cursor (the state read filters the rest).
    return ticket - state.cursor - bisect_left(state.removed, ticket)


@dataclass
class RateMeter:
    """Admissions per second over a sliding window of the shared admitted counter."""

    window_seconds: float = 10.0

    def __post_init__(self) -> None:
        self._samples: deque[tuple[float, int]] = deque()

    def observe(self, admitted_total: int, at: float | None = None) -> None:
        now = time.monotonic() if at is None else at
        self._samples.append((now, admitted_total))
        while len(self._samples) > 2 and now - self._samples[0][0] > self.window_seconds:
            self._samples.popleft()

    @property
    def rate(self) -> float:
        if len(self._samples) < 2:
            return 0.0
        (t0, n0), (t1, n1) = self._samples[0], self._samples[-1]
        return (n1 - n0) / (t1 - t0) if t1 > t0 else 0.0

    def eta_seconds(self, people_ahead: int) -> float | None:
        rate = self.rate
        return round(people_ahead / rate, 1) if rate > 0 else None
