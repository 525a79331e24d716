"""Readers waiting for a reservation to change, woken when this process changes it.

A buyer's page asks to be answered once its pending reservation is settled (paid, failed,
expired) instead of asking again every second: on the replica that applies the change the
answer goes out at once, and a change another replica applied is read at the next recheck.
"""

import asyncio
import contextlib
from dataclasses import dataclass, field


@dataclass
class _Waiters:
    changed: asyncio.Event = field(default_factory=asyncio.Event)
    count: int = 0


class ReservationChanges:
    def __init__(self) -> None:
        self._waiting: dict[str, _Waiters] = {}

    def announce(self, reservation_id: str) -> None:
        """The reservation changed here: wake everyone waiting for it."""
        if (waiters := self._waiting.pop(reservation_id, None)) is not None:
            waiters.changed.set()

    async def wait(self, reservation_id: str, seconds: float) -> None:
        """Until a change to the reservation is announced, or `seconds` pass."""
        waiters = self._waiting.setdefault(reservation_id, _Waiters())
        waiters.count += 1
        try:
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(seconds):
                    await waiters.changed.wait()
        finally:
            waiters.count -= 1
            if not waiters.count and self._waiting.get(reservation_id) is waiters:
                del self._waiting[reservation_id]

    def __len__(self) -> int:
        """Reservations someone is waiting for."""
        return len(self._waiting)
