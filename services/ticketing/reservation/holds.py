"""Seat holds in Redis: hold, sell and release seats atomically with Lua over `SaleKeys.seats`.

A seat's state is "free", "held:<reservation id>" or "sold:<reservation id>"; a seat that is
not a field of the hash does not exist. Each reservation also has a hold key (with a TTL) that
lists its seats.
"""

from typing import Any

import redis.asyncio as aioredis
from redis.commands.core import AsyncScript
from redis.exceptions import RedisError

from ticketing.common.errors import PermanentError, TemporaryError
from ticketing.common.redis_keys import SaleKeys

FREE = "free"

# KEYS: seats hash, hold key. ARGV: reservation id, hold key TTL (ms), seat ids...
# All or none: the seats are held only if every one of them exists and is free.
HOLD = """
if redis.call('EXISTS', KEYS[1]) == 0 then return {'no_event'} end
local unknown, taken, seats = {}, {}, {}
for i = 3, #ARGV do
  local state = redis.call('HGET', KEYS[1], ARGV[i])
  if not state then unknown[#unknown + 1] = ARGV[i]
  elseif state ~= 'free' then taken[#taken + 1] = ARGV[i] end
  seats[#seats + 1] = ARGV[i]
end
if #unknown > 0 then return {'unknown', unpack(unknown)} end
if #taken > 0 then return {'taken', unpack(taken)} end
local held = 'held:' .. ARGV[1]
for _, seat in ipairs(seats) do redis.call('HSET', KEYS[1], seat, held) end
redis.call('SET', KEYS[2], cjson.encode(seats), 'PX', ARGV[2])
return {'held'}
"""

# KEYS: seats hash, hold key. ARGV: reservation id, seat ids...
# Frees only seats this reservation still holds: never a seat sold, or held by someone else.
RELEASE = """
local held = 'held:' .. ARGV[1]
local freed = 0
for i = 2, #ARGV do
  if redis.call('HGET', KEYS[1], ARGV[i]) == held then
    redis.call('HSET', KEYS[1], ARGV[i], 'free')
    freed = freed + 1
  end
end
redis.call('DEL', KEYS[2])
return freed
"""

# KEYS: seats hash, hold key. ARGV: reservation id, seat ids...
# Runs only after the tickets are committed in MySQL, which is the last word: the seats become
# sold to this reservation whatever Redis says. Returns the seats that were not held by it.
SELL = """
local held, sold = 'held:' .. ARGV[1], 'sold:' .. ARGV[1]
local surprises = {}
for i = 2, #ARGV do
  local state = redis.call('HGET', KEYS[1], ARGV[i])
  if state ~= held and state ~= sold then surprises[#surprises + 1] = ARGV[i] end
  redis.call('HSET', KEYS[1], ARGV[i], sold)
end
redis.call('DEL', KEYS[2])
return surprises
"""


class EventNotOnSale(PermanentError):
    """The event has no seat inventory loaded."""


class SeatsRefused(PermanentError):
    """Some of the requested seats cannot be held; `seat_ids` says which."""

    summary = "seats refused"

    def __init__(self, seat_ids: list[str]) -> None:
        super().__init__(f"{self.summary}: {', '.join(seat_ids)}")
        self.seat_ids = seat_ids


class UnknownSeats(SeatsRefused):
    summary = "no such seats in this event"


class SeatsTaken(SeatsRefused):
    summary = "seats already held or sold"


class SeatHolds:
    def __init__(self, redis: aioredis.Redis, prefix: str) -> None:
        self._prefix = prefix
        self._hold = redis.register_script(HOLD)
        self._release = redis.register_script(RELEASE)
        self._sell = redis.register_script(SELL)

    def _keys(self, event_id: str, reservation_id: str) -> list[str]:
        sale = SaleKeys(self._prefix, event_id)
        return [sale.seats, sale.hold(reservation_id)]

    async def hold(
        self, event_id: str, reservation_id: str, seat_ids: list[str], ttl_ms: int
    ) -> None:
        """Hold every seat for the reservation, or none of them."""
        result = await self._run(
            self._hold, event_id, reservation_id, [reservation_id, ttl_ms, *seat_ids]
        )
        outcome, *seats = (_text(item) for item in result)
        if outcome == "no_event":
            raise EventNotOnSale(f"event {event_id} has no seats on sale")
        if outcome == "unknown":
            raise UnknownSeats(seats)
        if outcome == "taken":
            raise SeatsTaken(seats)

    async def release(self, event_id: str, reservation_id: str, seat_ids: list[str]) -> int:
        """Put back on sale the seats still held by the reservation; how many were freed."""
        freed = await self._run(
            self._release, event_id, reservation_id, [reservation_id, *seat_ids]
        )
        return int(freed)

    async def sell(self, event_id: str, reservation_id: str, seat_ids: list[str]) -> list[str]:
        """Mark the seats sold to the reservation; the seats it did not hold before."""
        surprises = await self._run(
            self._sell, event_id, reservation_id, [reservation_id, *seat_ids]
        )
        return [_text(seat) for seat in surprises]

    async def _run(
        self, script: AsyncScript, event_id: str, reservation_id: str, args: list[str | int]
    ) -> Any:
        try:
            return await script(keys=self._keys(event_id, reservation_id), args=args)
        except RedisError as exc:
            raise TemporaryError("seat inventory is unavailable, try again") from exc


def _text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value
