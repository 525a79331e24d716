"""One sale's waiting room in Redis: join, heartbeats, admission, sweeping, and what a tick reads.

Every method is one Lua script or one pipeline; `SaleQueue` holds no state of its own, so any
number of processes can use the same sale at once.
"""

import time
from collections.abc import Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from redis.commands.core import AsyncScript

from ticketing.common.ratelimit import RateRule, seconds_to_wait
from ticketing.common.redis_client import RedisClient
from ticketing.common.redis_keys import SaleKeys
from ticketing.common.sale_config import SaleConfig
from ticketing.common.settings import CommonSettings
from ticketing.common.tokens import issue_admission_token
from ticketing.queue import fairness, scripts


class PlaceState(StrEnum):
    ADMITTED = "admitted"
    WAITING = "waiting"
    PREQUEUE = "prequeue"
    NOT_OPEN = "not_open"
    CLOSED = "closed"
    NONE = "none"


@dataclass(frozen=True)
class Place:
    state: PlaceState
    ticket: int | None = None


@dataclass(frozen=True)
class SeatCounts:
    free: int
    held: int
    total: int

    @property
    def none_left(self) -> bool:
        """Sold out: the sale has seats and every one is sold (none free, none held)."""
        return self.total > 0 and self.free == 0 and self.held == 0


@dataclass(frozen=True)
class QueueState:
    """What one tick reads about a sale, once per process, to answer every waiting socket."""

    cursor: int
    admitted_total: int
    waiting: int
    active: int
    removed: tuple[int, ...]
    sold_out: bool
    prequeue_assigned: bool


@dataclass(frozen=True)
class FairnessRecord:
    commitment: str
    seed: str | None
    prequeue_size: int | None
    order: tuple[str, ...]


@dataclass(frozen=True)
class Throttled:
    """A join refused by the per-user rate limit: the user may come back in `wait_seconds`."""

    wait_seconds: int


def _text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value


def _sale_times(config: SaleConfig) -> tuple[float, float, float]:
    """When the pre-queue opens, the sale opens and the sale closes (epoch seconds), for JOIN."""
    opens = config.opens_at.timestamp()
    return opens - config.pre_queue_minutes * 60, opens, config.closes_at.timestamp()


def _place(state: bytes | str, ticket: bytes | str) -> Place:
    place_state = PlaceState(_text(state))
    number = int(float(_text(ticket)))
    return Place(place_state, number if place_state is PlaceState.WAITING else None)


class SaleQueue:
    def __init__(self, client: RedisClient, prefix: str, event_id: str) -> None:
        self.client = client
        self.keys = SaleKeys(prefix, event_id)
        self.event_id = event_id
        self._scripts: dict[str, AsyncScript] = {}

    def _script(self, source: str) -> AsyncScript:
        # register_script caches the SHA and falls back to EVAL once after a Redis restart.
        if source not in self._scripts:
            self._scripts[source] = self.client.register_script(source)
        return self._scripts[source]

    async def _run(self, source: str, keys: list[str], args: list[Any]) -> Any:
        return await self._script(source)(keys=keys, args=args)

    @property
    def _line_keys(self) -> list[str]:
        k = self.keys
        return [k.waiting, k.active, k.ticket_seq, k.prequeue, k.fairness, k.heartbeat, k.parked]

    async def join(self, user_id: str, config: SaleConfig, create: bool = True) -> Place:
        """The user's place; joining again (another tab, a retry) returns the same place."""
        state, ticket = await self._run(
            scripts.JOIN, self._line_keys, [user_id, *_sale_times(config), "1" if create else "0"]
        )
        return _place(state, ticket)

    async def join_many(
        self, user_ids: Sequence[str], config: SaleConfig, rule: RateRule
    ) -> list[Place | Throttled]:
        """Join every user in one round trip, in the order given (earlier, earlier ticket); each
        join is first counted against `rule`, and one over it is refused, not joined."""
        replies = await self._run(
            scripts.JOIN_MANY,
            [*self._line_keys, *(self.keys.rate(rule.action, user) for user in user_ids)],
            [*_sale_times(config), rule.limit, rule.window_ms, *user_ids],
        )
        return [
            Throttled(seconds_to_wait(int(ticket)))
            if _text(state) == "limited"
            else _place(state, ticket)
            for state, ticket in zip(replies[::2], replies[1::2], strict=True)
        ]

    async def touch(self, users: list[str]) -> None:
        """Users whose socket is open here are present: refresh them, bring parked ones back."""
        if users:
            k = self.keys
            await self._run(
                scripts.TOUCH, [k.heartbeat, k.waiting, k.parked, k.prequeue, k.fairness], users
            )

    async def mark_away(self, users: Sequence[str], seconds: float) -> None:
        """Backdate the users' heartbeats: away now, gone when the grace period has passed."""
        await self._run(scripts.AWAY, [self.keys.heartbeat], [seconds, *users])

    async def ensure_seed(self) -> str:
        fresh = fairness.new_seed()
        if await self.client.hsetnx(self.keys.fairness, "seed", fresh):
            return fresh
        stored = await self.client.hget(self.keys.fairness, "seed")
        return _text(stored) if stored is not None else fresh

    async def seal_and_assign(self, config: SaleConfig) -> bool:
        """At opening: freeze the pre-queue and give it the random order of the committed seed.

        True once the pre-queue has its order (there is nothing left to do at opening)."""
        k = self.keys
        seed = await self.ensure_seed()
        sealed = await self._run(
            scripts.SEAL, [k.ticket_seq, k.prequeue, k.fairness], [config.opens_at.timestamp()]
        )
        if not sealed:
            return False
        if not await self.client.hexists(k.fairness, "assigned"):
            users = [_text(u) for u in await self.client.smembers(k.prequeue)]
            order = fairness.random_order(seed, users)
            await self._run(scripts.ASSIGN, [k.waiting, k.fairness], order)
        return True

    async def fairness_record(self) -> FairnessRecord:
        seed = await self.ensure_seed()
        fields = {
            _text(name): _text(value)
            for name, value in (await self.client.hgetall(self.keys.fairness)).items()
        }
        sealed = "sealed_base" in fields
        order = fields.get("order", "")
        return FairnessRecord(
            commitment=fairness.commitment(seed),
            seed=seed if sealed else None,
            prequeue_size=int(fields["sealed_count"]) if sealed else None,
            order=tuple(order.split("\n")) if order else (),
        )

    async def sweep(self, grace_seconds: float, limit: int = 1000) -> int:
        """Remove users away for longer than the grace period; returns how many."""
        k = self.keys
        removed: int = await self._run(
            scripts.SWEEP,
            [k.heartbeat, k.waiting, k.parked, k.prequeue, k.fairness, k.removed],
            [grace_seconds, limit],
        )
        return removed

    async def admit(
        self,
        *,
        tps: float,
        max_active: int,
        session_ttl_seconds: float,
        away_after_seconds: float,
        open_: bool,
        burst_seconds: float = 1.0,
        limit: int = 5000,
    ) -> list[str]:
        """Admit from the head at the shared rate, within the cap; expired sessions leave first."""
        k = self.keys
        admitted = await self._run(
            scripts.ADMIT,
            [k.waiting, k.active, k.admission_bucket, k.serving, k.heartbeat, k.parked, k.removed],
            [
                tps,
                max_active,
                max(1.0, tps * burst_seconds),
                session_ttl_seconds,
                limit,
                away_after_seconds,
                "1" if open_ else "0",
            ],
        )
        return [_text(user) for user in admitted]

    async def seat_counts(self) -> SeatCounts:
        free, held, total = await self._run(scripts.SEAT_COUNTS, [self.keys.seats], [])
        return SeatCounts(int(free), int(held), int(total))

    async def is_sold_out(self) -> bool:
        return bool(await self.client.exists(self.keys.sold_out))

    async def declare_sold_out(self) -> bool:
        """Record that the sale sold out; True for the call that recorded it first.

        The sessions still open can buy nothing, so they end: the cap then counts only the
        waiting-list offers made for seats that come back."""
        first = bool(await self.client.set(self.keys.sold_out, "1", nx=True))
        if first:
            await self.client.delete(self.keys.active)
        return first

    async def admission_token(self, settings: CommonSettings, user_id: str) -> str | None:
        """The admitted user's token (issued once per session), or None if not admitted."""
        key = self.keys.admission(user_id)
        token = await self.client.get(key)
        if token is not None:
            return _text(token)
        expires = await self.client.zscore(self.keys.active, user_id)
        ttl = int((expires or 0) - time.time())
        if ttl <= 0:
            return None
        issued, _ = issue_admission_token(settings, user_id, self.event_id, ttl)
        # Another process may issue at the same moment: the first token stored is the one.
        await self.client.set(key, issued, ex=ttl, nx=True)
        token = await self.client.get(key)
        return _text(token) if token is not None else None

    async def state(self) -> QueueState:
        k = self.keys
        async with self.client.pipeline(transaction=False) as pipe:
            pipe.hmget(k.serving, ["cursor", "admitted"])
            pipe.zcard(k.waiting)
            pipe.zcard(k.active)
            pipe.zrange(k.removed, 0, -1, withscores=True)
            pipe.exists(k.sold_out)
            pipe.hexists(k.fairness, "assigned")
            (cursor, admitted), waiting, active, removed, sold_out, assigned = await pipe.execute()
        cursor_number = int(float(cursor or 0))
        return QueueState(
            cursor=cursor_number,
            admitted_total=int(admitted or 0),
            waiting=int(waiting),
            active=int(active),
            removed=tuple(sorted(int(s) for _, s in removed if s > cursor_number)),
            sold_out=bool(sold_out),
            prequeue_assigned=bool(assigned),
        )
