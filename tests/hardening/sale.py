"""A small running sale for fault tests: buyers holding seats over HTTP at a steady pace, and
the audit that says afterwards whether anything was sold twice, lost or left unfinished."""

import asyncio
import contextlib
import itertools
import random
import time
from collections import Counter
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import datetime

import httpx
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine
from ticketing.common.redis_client import RedisClient
from ticketing.common.redis_keys import SaleKeys
from ticketing.common.settings import CommonSettings
from ticketing.common.tokens import Principal, issue_access_token, issue_admission_token
from ticketing.retry.queue import DelayQueue
from ticketing.retry.worker import backlog

from tests.core.factories import bearer

TERMINAL = frozenset({"CONFIRMED", "FAILED", "EXPIRED", "CANCELLED"})
BUYERS = 4
# Each buyer waits this long between attempts: about ten holds a second in all, so a sale of
# a few hundred reservations spans a fault and its recovery.
PAUSE_SECONDS = 0.4
# Longer than any hold waits on a server that is away and back, so a buyer that stops has its
# last answer: a request given up on could still be committed after the audit read the sale.
REQUEST_TIMEOUT_SECONDS = 60.0


@dataclass
class Sale:
    """What the buyers saw: every reservation the service accepted (201) and every refusal."""

    event_id: str
    seats: list[str]
    accepted: set[str] = field(default_factory=set)
    answers: Counter[str] = field(default_factory=Counter)

    async def buyer(
        self, client: httpx.AsyncClient, settings: CommonSettings, n: int, stop: asyncio.Event
    ) -> None:
        """Hold a seat, pause, again, until `stop` is set; a request in flight is answered first."""
        rng = random.Random(n)
        for attempt in itertools.count():
            if stop.is_set():
                return
            # A crowd, not one person: each hold is another user's, within the purchase limit.
            user = f"buyer-{n}-{attempt}"
            token = issue_access_token(settings, Principal(user, f"{user}@example.org", ()))
            admission, _ = issue_admission_token(settings, user, self.event_id, 3600)
            headers = {**bearer(token), "X-Admission-Token": admission}
            seat = rng.choice(self.seats)
            try:
                response = await client.post(
                    f"/events/{self.event_id}/reservations",
                    json={"seat_ids": [seat]},
                    headers=headers,
                )
            except httpx.HTTPError as exc:
                self.answers[type(exc).__name__] += 1
            else:
                self.answers[str(response.status_code)] += 1
                if response.status_code == 201:
                    self.accepted.add(response.json()["id"])
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), PAUSE_SECONDS)


@contextlib.asynccontextmanager
async def buying(sale: Sale, base_url: str, settings: CommonSettings) -> AsyncIterator[Sale]:
    """Buyers hold seats until the block ends; then each waits for the answer to the request it
    has in flight. Cancelled instead, a hold the service was still working on was committed a
    moment after the test had found the sale settled (seen: two reservations audited as PENDING
    with their outbox rows unsent, CONFIRMED 90 ms later)."""
    stop = asyncio.Event()
    async with httpx.AsyncClient(base_url=base_url, timeout=REQUEST_TIMEOUT_SECONDS) as client:
        tasks = [asyncio.create_task(sale.buyer(client, settings, n, stop)) for n in range(BUYERS)]
        try:
            yield sale
        finally:
            stop.set()
            await asyncio.gather(*tasks, return_exceptions=True)


async def open_sale(redis: RedisClient, prefix: str, event_id: str, seats: int) -> Sale:
    seat_ids = [f"S-{n}" for n in range(1, seats + 1)]
    await redis.hset(SaleKeys(prefix, event_id).seats, mapping=dict.fromkeys(seat_ids, "free"))
    return Sale(event_id, seat_ids)


@dataclass
class Audit:
    """The platform's state once it has settled: what in it breaks a promise (a seat sold twice,
    an accepted reservation lost or unfinished, a payment kept for nothing), and where Redis's
    seats disagree with MySQL's tickets (`drift`: the seat map is wrong, no sale is)."""

    sale: Sale
    reservations: dict[str, str]
    payments: dict[str, str]
    broken: list[str]
    drift: list[str]

    @property
    def problems(self) -> list[str]:
        return self.broken + self.drift

    @property
    def statuses(self) -> Counter[str]:
        return Counter(self.reservations.values())


async def audit(
    engine: AsyncEngine, redis: RedisClient, prefix: str, sale: Sale, payments: bool = True
) -> Audit:
    """`payments=False` when the payment outcomes were played by the test, not charged."""
    async with engine.connect() as conn:
        reservations = dict((await conn.execute(text("SELECT id, status FROM reservations"))).all())
        charged = dict(
            (await conn.execute(text("SELECT reservation_id, status FROM payments"))).all()
        )
        tickets = (await conn.execute(text("SELECT seat_id, reservation_id FROM tickets"))).all()
        unsent = (
            await conn.execute(
                text("SELECT COUNT(*) FROM reservation_outbox WHERE sent_at IS NULL")
            )
        ).scalar_one()
    raw = await redis.hgetall(SaleKeys(prefix, sale.event_id).seats)
    seats = {k.decode(): v.decode() for k, v in raw.items()}

    problems = [
        f"seat {s} sold {n} times" for s, n in Counter(s for s, _ in tickets).items() if n > 1
    ]
    problems += [
        f"accepted reservation {r} is not recorded" for r in sale.accepted - set(reservations)
    ]
    problems += [f"reservation {r} ended {s}" for r, s in reservations.items() if s not in TERMINAL]
    for reservation_id, status in reservations.items() if payments else ():
        paid = charged.get(reservation_id)
        if status == "CONFIRMED" and paid != "SUCCEEDED":
            problems.append(f"reservation {reservation_id} confirmed with payment {paid}")
        if status != "CONFIRMED" and paid == "SUCCEEDED":
            problems.append(f"reservation {reservation_id} {status} but its payment was kept")
        if paid == "PENDING":
            problems.append(f"payment of {reservation_id} left PENDING")
    if unsent:
        problems.append(f"{unsent} outbox messages never sent")
    drift = [
        f"ticket for {seat} of {owner} but Redis says {seats.get(seat)}"
        for seat, owner in tickets
        if seats.get(seat) != f"sold:{owner}"
    ]
    sold_in_redis = {s for s, state in seats.items() if state.startswith("sold:")}
    drift += [
        f"seat {s} sold in Redis without a ticket" for s in sold_in_redis - {s for s, _ in tickets}
    ]
    return Audit(sale, reservations, charged, problems, drift)


async def settled(engine: AsyncEngine, ladder: DelayQueue, within: float) -> None:
    """Wait until no reservation is PENDING, every reservation's payment has been decided and
    its outcome applied, and the retry ladder is drained: a reservation that expired while its
    payment request or outcome was still on its way is not settled until the request has been
    answered (a payment expired holds fail) and a kept payment refunded."""
    query = text(
        "SELECT"
        " (SELECT COUNT(*) FROM reservations WHERE status = 'PENDING')"
        " + (SELECT COUNT(*) FROM reservation_outbox WHERE sent_at IS NULL)"
        " + (SELECT COUNT(*) FROM reservations r LEFT JOIN payments p ON p.reservation_id = r.id"
        "    WHERE p.status IS NULL OR p.status = 'PENDING')"
        " + (SELECT COUNT(*) FROM payments p JOIN reservations r ON r.id = p.reservation_id"
        "    WHERE p.status = 'SUCCEEDED' AND r.status <> 'CONFIRMED')"
    )
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        async with engine.connect() as conn:
            unsettled = (await conn.execute(query)).scalar_one()
        if unsettled == 0 and await backlog(ladder) == 0:
            return
        await asyncio.sleep(0.5)


async def progress_times(engine: AsyncEngine) -> tuple[list[datetime], list[datetime]]:
    """When each reservation was accepted, and when each confirmed one was confirmed."""
    async with engine.connect() as conn:
        held = (await conn.execute(text("SELECT created_at FROM reservations"))).scalars().all()
        confirmed = (
            (
                await conn.execute(
                    text("SELECT updated_at FROM reservations WHERE status = 'CONFIRMED'")
                )
            )
            .scalars()
            .all()
        )
    return sorted(held), sorted(confirmed)


def longest_gap(times: list[datetime], after: datetime, until: datetime | None = None) -> float:
    """The longest wait between two consecutive moments of progress, counted from `after`
    (and up to `until`: the window of one fault among several in a sale)."""
    moments = [after, *(t for t in times if t > after and (until is None or t <= until))]
    # No progress at all since `after`: the stall has not ended.
    gaps = [(b - a).total_seconds() for a, b in itertools.pairwise(moments)]
    return max(gaps, default=float("inf"))
