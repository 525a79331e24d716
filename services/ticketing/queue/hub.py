"""The per-process hub that tells every waiting socket where it stands, every push interval.

Once per interval and per sale the hub reads the sale's state (cursor, counts, removed tickets,
config) in one round trip, refreshes the heartbeats of everyone connected here in one script,
and then computes each socket's position in memory. A user costs a Redis read only at a
transition: when their turn comes (to fetch the admission token) or when the pre-queue is shuffled.
"""

import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

import redis.asyncio as aioredis
from redis.exceptions import RedisError

from ticketing.common.sale_config import SaleConfig, read_sale_config
from ticketing.queue.admission import is_admitting
from ticketing.queue.metrics import QUEUE_ACTIVE, QUEUE_ADMISSION_RATE, QUEUE_WAITING
from ticketing.queue.positions import RateMeter, position
from ticketing.queue.settings import QueueSettings
from ticketing.queue.store import Place, PlaceState, QueueState, SaleQueue

log = logging.getLogger("ticketing.queue.hub")

SOLD_OUT_NOTICE = (
    "Every seat is sold. Stay in line to join the waiting list: if a seat comes back, "
    "the first person on the list gets a time-limited offer."
)

Status = dict[str, object]
# Delivers one message; a socket that closed meanwhile is ignored (its handler cleans up).
Send = Callable[[Status], Awaitable[None]]


@dataclass(eq=False)
class Listener:
    """One open socket of one user."""

    user_id: str
    place: Place
    send: Send
    told_sold_out: bool = False
    done: bool = False


@dataclass
class SaleView:
    """What this process knows about one sale, refreshed once per push interval."""

    queue: SaleQueue
    meter: RateMeter = field(default_factory=RateMeter)
    listeners: set[Listener] = field(default_factory=set)
    state: QueueState | None = None
    config: SaleConfig | None = None
    read_at: float = float("-inf")


class Hub:
    def __init__(self, client: aioredis.Redis, settings: QueueSettings) -> None:
        self.client = client
        self.settings = settings
        self._views: dict[str, SaleView] = {}

    def view(self, event_id: str) -> SaleView:
        if event_id not in self._views:
            queue = SaleQueue(self.client, self.settings.redis_key_prefix, event_id)
            self._views[event_id] = SaleView(queue)
        return self._views[event_id]

    async def refresh(self, view: SaleView, max_age: float = 0.0) -> None:
        """Read the sale's state and config, unless this process read them `max_age` ago."""
        now = time.monotonic()
        if now - view.read_at <= max_age and view.state is not None:
            return
        view.state = await view.queue.state()
        view.config = await read_sale_config(
            self.client, self.settings.redis_key_prefix, view.queue.event_id
        )
        view.read_at = now
        view.meter.observe(view.state.admitted_total, now)
        sale = view.queue.event_id
        QUEUE_WAITING.labels(sale).set(view.state.waiting)
        QUEUE_ACTIVE.labels(sale).set(view.state.active)
        QUEUE_ADMISSION_RATE.labels(sale).set(view.meter.rate)

    async def status(self, view: SaleView, user_id: str, place: Place) -> tuple[Place, Status]:
        """The user's place (updated at transitions) and the message that tells them about it."""
        state, config = view.state, view.config
        if state is None or config is None:
            return place, {"type": "closed", "reason": "the sale is not configured"}
        common: Status = {
            "message": config.message,
            "sold_out": state.sold_out,
            "paused": not is_admitting(config, time.time()) and state.waiting > 0,
            "waiting": state.waiting,
            "active": state.active,
            "rate": round(view.meter.rate, 2),
        }
        at_turn = place.state is PlaceState.WAITING and position(state, place.ticket or 0) is None
        if (place.state is PlaceState.PREQUEUE and state.prequeue_assigned) or at_turn:
            place = await view.queue.join(user_id, config, create=False)
        if place.state is PlaceState.ADMITTED or at_turn:
            token = await view.queue.admission_token(self.settings, user_id)
            if token is not None:
                place = Place(PlaceState.ADMITTED)
                return place, {"type": "admitted", "token": token, **common}
        if place.state is PlaceState.WAITING and place.ticket is not None:
            ahead = max(0, (position(state, place.ticket) or 1) - 1)
            return place, {
                "type": "position",
                "ticket": place.ticket,
                "position": ahead + 1,
                "ahead": ahead,
                "eta_seconds": view.meter.eta_seconds(ahead + 1),
                **common,
            }
        if place.state is PlaceState.PREQUEUE:
            return place, {"type": "prequeue", "opens_at": config.opens_at.isoformat(), **common}
        return place, {"type": place.state.value, **common}

    async def connect(self, event_id: str, listener: Listener) -> None:
        view = self.view(event_id)
        view.listeners.add(listener)
        await self.refresh(view, self.settings.queue_push_interval_seconds)
        await self._push(view, listener)

    async def disconnect(self, event_id: str, listener: Listener) -> None:
        """A closed socket counts as away at once, unless the user has another one open here."""
        view = self.view(event_id)
        view.listeners.discard(listener)
        if listener.done or any(o.user_id == listener.user_id for o in view.listeners):
            return
        with contextlib.suppress(RedisError):
            await view.queue.mark_away(listener.user_id, self.settings.queue_away_after_seconds)

    async def _push(self, view: SaleView, listener: Listener) -> None:
        if view.state is not None and view.state.sold_out and not listener.told_sold_out:
            listener.told_sold_out = True
            await listener.send({"type": "sold_out", "notice": SOLD_OUT_NOTICE})
        listener.place, message = await self.status(view, listener.user_id, listener.place)
        listener.done = listener.place.state is PlaceState.ADMITTED
        await listener.send(message)

    async def tick(self) -> None:
        for view in list(self._views.values()):
            listeners = [listener for listener in view.listeners if not listener.done]
            if not listeners:
                continue
            await self.refresh(view)
            await view.queue.touch(sorted({listener.user_id for listener in listeners}))
            for listener in listeners:
                await self._push(view, listener)

    async def run(self) -> None:
        while True:
            started = time.monotonic()
            try:
                await self.tick()
            except RedisError:
                log.exception("hub tick failed; retrying next interval")
            elapsed = time.monotonic() - started
            await asyncio.sleep(max(0.0, self.settings.queue_push_interval_seconds - elapsed))
