"""The expiry sweeper: puts the seats of reservations whose hold ran out back on sale, and reaps
the holds whose reservation was never recorded (`orphans.py`)."""

import asyncio
import logging

from ticketing.common.liveness import beat
from ticketing.reservation.orphans import OrphanReaper
from ticketing.reservation.service import ReservationService

log = logging.getLogger(__name__)

BATCH = 100


async def sweep_forever(
    service: ReservationService, reaper: OrphanReaper, interval_seconds: float
) -> None:
    while True:
        beat()
        try:
            # A full batch means more may be due: sweep again without waiting.
            while await service.expire_due(BATCH) == BATCH:
                pass
            # Expiring first releases the due PENDING holds, so the reaper's batches are orphans.
            while await reaper.reap(BATCH) >= BATCH:
                pass
        except Exception:
            log.exception("expiry sweep failed; retrying")
        await asyncio.sleep(interval_seconds)
