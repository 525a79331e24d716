"""Joining the line from the routes: the sale's configuration from the hub's per-interval cache,
and every join of a sale coalesced with the others in flight into one Redis round trip."""

import asyncio
from collections.abc import Sequence

from ticketing.common.coalesce import Coalescer
from ticketing.common.ratelimit import RateRule
from ticketing.common.sale_config import SaleConfig, read_sale_config
from ticketing.queue.hub import Hub, SaleView
from ticketing.queue.store import Place, Throttled

# Bounds one JOIN_MANY's time inside Redis (a join is a few dozen microseconds of Lua there), so
# that a burst never holds Redis for long; under load a batch is whoever arrived meanwhile.
MAX_BATCH = 256

_Join = tuple[str, SaleConfig]


class Joins:
    """This process's joins, for sales known to be configured."""

    def __init__(self, hub: Hub) -> None:
        self.hub = hub
        self._configured: set[str] = set()
        self._reading: dict[str, asyncio.Future[SaleConfig | None]] = {}
        self._batches: dict[tuple[str, str], Coalescer[_Join, Place | Throttled]] = {}

    async def sale(self, event_id: str) -> tuple[SaleView, SaleConfig] | None:
        """The sale's view and configuration, or None when the sale is not configured.

        The configuration is the hub's, at most one push interval old: a change to a sale, or its
        removal, reaches joins within one interval. A sale id this process has not seen is read
        from Redis first, so a new sale is joinable at once and an unknown id makes no view."""
        if event_id not in self._configured:
            config = await self._first_read(event_id)
            if config is None:
                return None
            self._configured.add(event_id)
            return self.hub.view(event_id), config
        view = self.hub.view(event_id)
        await self.hub.refresh(view, self.hub.settings.queue_push_interval_seconds)
        return None if view.config is None else (view, view.config)

    async def _first_read(self, event_id: str) -> SaleConfig | None:
        """The sale's configuration from Redis, one read shared by the joins that arrive while it
        is in flight: at a sale's opening a process meets hundreds of joins of a sale it has not
        seen before the first read returns, and each read its own. (Not a refresh of the hub's
        view yet: a view read now would not count this join.)"""
        if (reading := self._reading.get(event_id)) is None:
            reading = asyncio.ensure_future(
                read_sale_config(self.hub.client, self.hub.settings.redis_key_prefix, event_id)
            )
            self._reading[event_id] = reading
            reading.add_done_callback(lambda _: self._reading.pop(event_id, None))
        # Shielded: a caller that goes away does not cancel the read the others wait for.
        return await asyncio.shield(reading)

    async def join(
        self, view: SaleView, config: SaleConfig, user_id: str, rule: RateRule
    ) -> Place | Throttled:
        """The user's place, or their refusal by `rule`, joined together with every other join of
        this sale and rule in flight in this process."""
        key = (view.queue.event_id, rule.action)
        if key not in self._batches:

            async def join_batch(joins: Sequence[_Join]) -> list[Place | Throttled]:
                # The newest configuration of the batch: they differ only across a refresh.
                return await view.queue.join_many([user for user, _ in joins], joins[-1][1], rule)

            self._batches[key] = Coalescer(join_batch, MAX_BATCH)
        return await self._batches[key].submit((user_id, config))
