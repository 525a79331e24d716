"""The per-process hub that tells every waiting socket where it stands, every push interval.

Once per interval and per sale the hub reads the sale's state (cursor, counts, removed tickets,
config) in one round trip, refreshes the heartbeats of everyone connected here in one script,
serialises the fields every socket of the sale shares once, and then computes each socket's own
fields in memory. A user costs a Redis read only at a transition: when their turn comes (to fetch
the admission token) or when the pre-queue is shuffled.
"""

import asyncio
import contextlib
import logging
import time
from collections import Counter
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field

import orjson

from ticketing.common.coalesce import Coalescer
from ticketing.common.liveness import beat
from ticketing.common.redis_client import REDIS_UNAVAILABLE, RedisClient
from ticketing.common.sale_config import SaleConfig, read_sale_config
from ticketing.queue.metrics import QUEUE_ACTIVE, QUEUE_ADMISSION_RATE, QUEUE_WAITING
from ticketing.queue.positions import RateMeter, position
from ticketing.queue.settings import QueueSettings
from ticketing.queue.store import Place, PlaceState, QueueState, SaleQueue

log = logging.getLogger("ticketing.queue.hub")

SOLD_OUT_NOTICE = (
    "Every seat is sold. Stay in line to join the waiting list: if a seat comes back, "
    "the first person on the list gets a time-limited offer."
)
SOLD_OUT_TEXT = orjson.dumps({"type": "sold_out", "notice": SOLD_OUT_NOTICE}).decode()
NOT_CONFIGURED: dict[str, object] = {"type": "closed", "reason": "the sale is not configured"}

# A tick hands the event loop back after this many sockets, so that handshakes and joins arriving
# during a tick of tens of thousands of sockets are not held up until it ends.
SOCKETS_PER_SLICE = 500
# At most this many users marked away in one Redis call (one ZADD each inside the script).
AWAY_BATCH = 1000
# Sockets whose turn came in this tick fetch their token concurrently, this many at a time (each
# takes a pooled Redis connection).
TRANSITIONS_AT_ONCE = 32

Status = dict[str, object]
# Delivers one message, serialised JSON; a socket that closed meanwhile is ignored (its handler
# cleans up).
Send = Callable[[str], Awaitable[None]]


@dataclass(eq=False, slots=True)
class Listener:
    """One open socket of one user (slots: one for each of tens of thousands of sockets)."""

    user_id: str
    place: Place
    send: Send
    told_sold_out: bool = False
    done: bool = False


@dataclass
class SaleView:
    """What this process knows about one sale, refreshed once per push interval."""

    queue: SaleQueue
    # Marks users away when their last socket here closes (see `Hub.disconnect`).
    away: Coalescer[str, None]
    meter: RateMeter = field(default_factory=RateMeter)
    listeners: set[Listener] = field(default_factory=set)
    sockets_per_user: Counter[str] = field(default_factory=Counter)
    state: QueueState | None = None
    config: SaleConfig | None = None
    read_at: float = float("-inf")
    reading: asyncio.Future[None] | None = None  # the read in flight, shared by its callers
    # The fields every message about this sale carries, as of the last read, and the same
    # serialised as the tail of a JSON object (`,"message":...}`), spliced after each socket's own.
    shared: Status = field(default_factory=dict)
    shared_tail: bytes = b"}"

    def message(self, own: Status) -> str:
        """One socket's message: its own fields followed by the shared ones, as JSON text."""
        return (orjson.dumps(own)[:-1] + self.shared_tail).decode()


class Hub:
    def __init__(self, client: RedisClient, settings: QueueSettings) -> None:
        self.client = client
        self.settings = settings
        self._views: dict[str, SaleView] = {}

    def view(self, event_id: str) -> SaleView:
        if event_id not in self._views:
            queue = SaleQueue(self.client, self.settings.redis_key_prefix, event_id)
            self._views[event_id] = SaleView(queue, self._away_marker(queue))
        return self._views[event_id]

    async def refresh(self, view: SaleView, max_age: float = 0.0) -> None:
        """Read the sale's state and config, unless this process read them `max_age` ago.

        Callers arriving while a read is in flight share it: under load each starting its own
        made about one read of the sale for every three joins."""
        if time.monotonic() - view.read_at <= max_age and view.state is not None:
            return
        if view.reading is None:
            reading = view.reading = asyncio.ensure_future(self._read(view))
            reading.add_done_callback(lambda _: setattr(view, "reading", None))
        # Shielded: a caller that gives up does not cancel the read the others wait for.
        await asyncio.shield(view.reading)

    async def _read(self, view: SaleView) -> None:
        now = time.monotonic()
        view.state = state = await view.queue.state()
        view.config = config = await read_sale_config(
            self.client, self.settings.redis_key_prefix, view.queue.event_id
        )
        view.read_at = now
        view.meter.observe(state.admitted_total, now)
        view.shared = {} if config is None else _shared_fields(view, state, config)
        view.shared_tail = b"," + orjson.dumps(view.shared)[1:] if view.shared else b"}"
        sale = view.queue.event_id
        QUEUE_WAITING.labels(sale).set(state.waiting)
        QUEUE_ACTIVE.labels(sale).set(state.active)
        QUEUE_ADMISSION_RATE.labels(sale).set(view.meter.rate)

    async def status(self, view: SaleView, user_id: str, place: Place) -> tuple[Place, Status]:
        """The user's place (updated at transitions) and the message that tells them about it."""
        place, own = await self._own_fields(view, user_id, place)
        return place, {**own, **view.shared}

    async def _own_fields(self, view: SaleView, user_id: str, place: Place) -> tuple[Place, Status]:
        state, config = view.state, view.config
        if state is None or config is None:
            return place, NOT_CONFIGURED
        at_turn = _at_turn(state, place)
        if (place.state is PlaceState.PREQUEUE and state.prequeue_assigned) or at_turn:
            place = await view.queue.join(user_id, config, create=False)
        if place.state is PlaceState.ADMITTED or at_turn:
            token = await view.queue.admission_token(self.settings, user_id)
            if token is not None:
                return Place(PlaceState.ADMITTED), {"type": "admitted", "token": token}
            if place.state is PlaceState.ADMITTED:
                # The session ran out before the next admission round removed it: no token is
                # left to give, and the place in line was spent.
                return Place(PlaceState.NONE), {"type": PlaceState.NONE.value}
        if place.state is PlaceState.WAITING and place.ticket is not None:
            ahead = max(0, (position(state, place.ticket) or 1) - 1)
            return place, {
                "type": "position",
                "ticket": place.ticket,
                "position": ahead + 1,
                "ahead": ahead,
                "eta_seconds": view.meter.eta_seconds(ahead + 1),
            }
        if place.state is PlaceState.PREQUEUE:
            return place, {"type": "prequeue", "opens_at": config.opens_at.isoformat()}
        return place, {"type": place.state.value}

    async def connect(self, event_id: str, listener: Listener) -> None:
        view = self.view(event_id)
        view.listeners.add(listener)
        view.sockets_per_user[listener.user_id] += 1
        await self.refresh(view, self.settings.queue_push_interval_seconds)
        await self._push(view, listener)

    async def disconnect(self, event_id: str, listener: Listener) -> None:
        """A closed socket counts as away at once, unless the user has another one open here."""
        view = self.view(event_id)
        if listener not in view.listeners:
            return
        view.listeners.discard(listener)
        view.sockets_per_user[listener.user_id] -= 1
        if view.sockets_per_user[listener.user_id] > 0:
            return
        del view.sockets_per_user[listener.user_id]
        if listener.done:
            return
        with contextlib.suppress(*REDIS_UNAVAILABLE):
            await view.away.submit(listener.user_id)

    def _away_marker(self, queue: SaleQueue) -> Coalescer[str, None]:
        """Marks users away as their last socket closes, together with every other close of the
        sale in flight: one Redis call for a crowd leaving, not one a socket."""
        seconds = self.settings.queue_away_after_seconds

        async def mark(users: Sequence[str]) -> list[None]:
            await queue.mark_away(users, seconds)
            return [None] * len(users)

        return Coalescer(mark, AWAY_BATCH)

    async def _push(self, view: SaleView, listener: Listener) -> None:
        if view.state is not None and view.state.sold_out and not listener.told_sold_out:
            listener.told_sold_out = True
            await listener.send(SOLD_OUT_TEXT)
        listener.place, own = await self._own_fields(view, listener.user_id, listener.place)
        listener.done = listener.place.state is PlaceState.ADMITTED
        await listener.send(view.message(own))

    async def tick(self) -> None:
        for view in list(self._views.values()):
            listeners = [listener for listener in view.listeners if not listener.done]
            if not listeners:
                continue
            await self.refresh(view)
            await view.queue.touch(sorted({listener.user_id for listener in listeners}))
            await self._broadcast(view, listeners)

    async def _broadcast(self, view: SaleView, listeners: list[Listener]) -> None:
        """Push every socket its message: first those whose place is changing, concurrently (each
        reads Redis), then the rest, which need no read, a slice at a time."""
        state = view.state
        changing: list[Listener] = []
        steady: list[Listener] = []
        for listener in listeners:
            moving = state is not None and _reads_redis(state, listener.place)
            (changing if moving else steady).append(listener)
        for start in range(0, len(changing), TRANSITIONS_AT_ONCE):
            batch = changing[start : start + TRANSITIONS_AT_ONCE]
            await asyncio.gather(*(self._push(view, listener) for listener in batch))
        for start in range(0, len(steady), SOCKETS_PER_SLICE):
            for listener in steady[start : start + SOCKETS_PER_SLICE]:
                await self._push(view, listener)
            await asyncio.sleep(0)

    async def run(self) -> None:
        while True:
            beat()
            started = time.monotonic()
            try:
                await self.tick()
            except REDIS_UNAVAILABLE:
                log.exception("hub tick failed; retrying next interval")
            elapsed = time.monotonic() - started
            await asyncio.sleep(max(0.0, self.settings.queue_push_interval_seconds - elapsed))


def _at_turn(state: QueueState, place: Place) -> bool:
    return place.state is PlaceState.WAITING and position(state, place.ticket or 0) is None


def _reads_redis(state: QueueState, place: Place) -> bool:
    """Whether this socket's message needs a Redis read this tick (its place is changing)."""
    return (
        place.state is PlaceState.ADMITTED
        or (place.state is PlaceState.PREQUEUE and state.prequeue_assigned)
        or _at_turn(state, place)
    )


def _shared_fields(view: SaleView, state: QueueState, config: SaleConfig) -> Status:
    return {
        "message": config.message,
        "sold_out": state.sold_out,
        # The operator's hold on admission, from the config alone: a count of the waiting would
        # be up to one interval old, so the first joiner of a paused sale was told "not paused".
        "paused": config.paused or config.maintenance,
        "waiting": state.waiting,
        "active": state.active,
        "rate": round(view.meter.rate, 2),
    }
