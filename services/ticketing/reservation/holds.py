"""Seat holds in Redis: hold, sell and release seats atomically with Lua over `SaleKeys.seats`.

A seat's state is "free", "held:<reservation id>" or "sold:<reservation id>"; a seat that is
not a field of the hash does not exist. Each reservation also has a hold key (with a TTL) that
lists its seats, and an entry in the sale's hold index (`hold_deadlines` + `hold_owners`) until
its seats are sold or released, so that a hold whose reservation was never recorded can be found.
"""

import json
import logging
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from redis.commands.core import AsyncScript

from ticketing.common.errors import PermanentError, TemporaryError
from ticketing.common.ratelimit import (
    COUNT_REQUEST_LUA,
    RateRule,
    refusal_reason,
    seconds_to_wait,
)
from ticketing.common.redis_client import REDIS_UNAVAILABLE, RedisClient
from ticketing.common.redis_keys import SaleKeys

log = logging.getLogger(__name__)

FREE = "free"

# KEYS: seats hash, hold key, hold deadlines, hold owners, buyer seats, the buyer's hold counter.
# ARGV: reservation id, hold key TTL (ms), user id, purchase limit, holds allowed a window,
# window (ms), seat ids...
# The request is counted against the buyer's rate of holds first, refused or not (the count and
# the hold in one round trip). All or none: the seats are held only if every one of them exists
# and is free, and the buyer's seats held or bought in this sale stay within the limit. The index
# entry and the buyer's count are written in the same script, so no hold can exist that the
# orphan reaper cannot find, and concurrent holds of one buyer cannot pass the limit together.
HOLD = (
    COUNT_REQUEST_LUA
    + """
local left = count_request(KEYS[6], tonumber(ARGV[5]), tonumber(ARGV[6]))
if left > 0 then return {'limited', tostring(left)} end
if redis.call('EXISTS', KEYS[1]) == 0 then return {'no_event'} end
local unknown, taken, seats = {}, {}, {}
for i = 7, #ARGV do
  local state = redis.call('HGET', KEYS[1], ARGV[i])
  if not state then unknown[#unknown + 1] = ARGV[i]
  elseif state ~= 'free' then taken[#taken + 1] = ARGV[i] end
  seats[#seats + 1] = ARGV[i]
end
if #unknown > 0 then return {'unknown', unpack(unknown)} end
local mine = tonumber(redis.call('HGET', KEYS[5], ARGV[3]) or '0')
if mine + #seats > tonumber(ARGV[4]) then return {'limit', tostring(mine)} end
if #taken > 0 then return {'taken', unpack(taken)} end
local held = 'held:' .. ARGV[1]
for _, seat in ipairs(seats) do redis.call('HSET', KEYS[1], seat, held) end
redis.call('HINCRBY', KEYS[5], ARGV[3], #seats)
redis.call('SET', KEYS[2], cjson.encode(seats), 'PX', ARGV[2])
local now = redis.call('TIME')
local deadline = now[1] * 1000 + math.floor(now[2] / 1000) + tonumber(ARGV[2])
redis.call('ZADD', KEYS[3], string.format('%d', deadline), ARGV[1])
redis.call('HSET', KEYS[4], ARGV[1], cjson.encode({user = ARGV[3], seats = seats}))
return {'held'}
"""
)

# Moves a buyer's count of seats held or bought by `change`; a count that reaches 0 is removed.
BUYER_COUNT_LUA = """
local function count_buyer_seats(key, user, change)
  if change ~= 0 and redis.call('HINCRBY', key, user, change) <= 0 then
    redis.call('HDEL', key, user)
  end
end
"""

# KEYS: seats hash, hold key, hold deadlines, hold owners, buyer seats.
# ARGV: reservation id, user id, seat ids...
# Frees only seats this reservation still holds: never a seat sold, or held by someone else; the
# buyer's count drops by the seats freed.
RELEASE = (
    BUYER_COUNT_LUA
    + """
local held = 'held:' .. ARGV[1]
local freed = 0
for i = 3, #ARGV do
  if redis.call('HGET', KEYS[1], ARGV[i]) == held then
    redis.call('HSET', KEYS[1], ARGV[i], 'free')
    freed = freed + 1
  end
end
count_buyer_seats(KEYS[5], ARGV[2], -freed)
redis.call('DEL', KEYS[2])
redis.call('ZREM', KEYS[3], ARGV[1])
redis.call('HDEL', KEYS[4], ARGV[1])
return freed
"""
)

# Marks one reservation's seats sold. Runs only after its tickets are committed in MySQL, which
# is the last word: the seats become sold to this reservation whatever Redis says. Returns whether
# the session (below) ended, and the seats that were not held by it; each of those now counts for
# this buyer, and no longer for a buyer of another hold it was taken from. Given the sale's active
# set, the buyer's waiting-room session ends in the same round trip (the queue's member is the
# user id), so the next in line gets in now instead of when it would have expired; the session's
# expiry frees the slot anyway if that one write fails.
SELL_LUA = (
    BUYER_COUNT_LUA
    + """
local function sell(seats, hold, deadlines, owners, buyers, active, reservation, user, seat_ids)
  local held, sold = 'held:' .. reservation, 'sold:' .. reservation
  local surprises = {}
  for _, seat in ipairs(seat_ids) do
    local state = redis.call('HGET', seats, seat)
    if state ~= held and state ~= sold then
      surprises[#surprises + 1] = seat
      if state and string.sub(state, 1, 5) == 'held:' then
        local owner = redis.call('HGET', owners, string.sub(state, 6))
        if owner then count_buyer_seats(buyers, cjson.decode(owner).user, -1) end
      end
    end
    redis.call('HSET', seats, seat, sold)
  end
  count_buyer_seats(buyers, user, #surprises)
  redis.call('DEL', hold)
  redis.call('ZREM', deadlines, reservation)
  redis.call('HDEL', owners, reservation)
  -- pcall: a session that cannot be ended (the set unreadable) leaves the sale as it is.
  local ended = not active or type(redis.pcall('ZREM', active, user)) == 'number'
  return {ended and 1 or 0, surprises}
end
"""
)

# KEYS: seats hash, hold deadlines, hold owners, buyer seats, the sale's active set, then the hold
# key of each sale. ARGV[1]: JSON list of sales of this sale's seats, each [reservation id, user
# id, whether to end the buyer's session, [seat ids]]. One `sell` per sale, in order; returns
# each one's result.
SELL_MANY = (
    SELL_LUA
    + """
local results = {}
for i, sale in ipairs(cjson.decode(ARGV[1])) do
  local active = nil
  if sale[3] then active = KEYS[5] end
  results[i] = sell(KEYS[1], KEYS[5 + i], KEYS[2], KEYS[3], KEYS[4], active,
                    sale[1], sale[2], sale[4])
end
return results
"""
)

# KEYS: hold deadlines, hold owners. ARGV: how many.
# Holds whose hold key has expired, by Redis's clock (the one the key's TTL runs on), each as
# reservation id then its owner's JSON.
EXPIRED = """
local now = redis.call('TIME')
local due = string.format('%d', now[1] * 1000 + math.floor(now[2] / 1000))
local ids = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', due, 'LIMIT', 0, ARGV[1])
local found = {}
for _, id in ipairs(ids) do
  found[#found + 1] = id
  found[#found + 1] = redis.call('HGET', KEYS[2], id)
end
return found
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


class PurchaseLimitReached(PermanentError):
    """The buyer would hold or own more seats in the sale than its purchase limit allows."""

    def __init__(self, limit: int, already: int) -> None:
        super().__init__(
            f"purchase limit: at most {limit} seats per buyer in this sale, "
            f"and you already hold or bought {already}"
        )
        self.limit = limit
        self.already = already


class TooManyHolds(PermanentError):
    """The buyer is over their rate of holds in this sale: they may hold again in `wait_seconds`."""

    def __init__(self, rule: RateRule, wait_seconds: int) -> None:
        super().__init__(refusal_reason(rule, wait_seconds))
        self.rule = rule
        self.wait_seconds = wait_seconds


@dataclass(frozen=True)
class ExpiredHold:
    """A hold whose hold key has expired but whose seats were never sold or released."""

    reservation_id: str
    user_id: str
    seat_ids: list[str]


@dataclass(frozen=True)
class SeatSale:
    """One reservation's seats to mark sold (`SeatHolds.sell_many`)."""

    reservation_id: str
    user_id: str
    seat_ids: list[str]
    end_session: bool


class SeatHolds:
    def __init__(self, redis: RedisClient, prefix: str) -> None:
        self._prefix = prefix
        self._hold = redis.register_script(HOLD)
        self._release = redis.register_script(RELEASE)
        self._sell_many = redis.register_script(SELL_MANY)
        self._expired = redis.register_script(EXPIRED)

    def _keys(self, event_id: str, reservation_id: str) -> list[str]:
        sale = SaleKeys(self._prefix, event_id)
        return [
            sale.seats,
            sale.hold(reservation_id),
            sale.hold_deadlines,
            sale.hold_owners,
            sale.buyer_seats,
        ]

    async def hold(
        self,
        event_id: str,
        reservation_id: str,
        user_id: str,
        seat_ids: list[str],
        ttl_ms: int,
        *,
        max_seats_per_buyer: int,
        rate: RateRule,
    ) -> None:
        """Count the request against the buyer's `rate` of holds, then hold every seat for the
        reservation, or none of them; none either if the buyer would then hold or own more than
        `max_seats_per_buyer` seats in the sale."""
        keys = self._keys(event_id, reservation_id)
        keys.append(SaleKeys(self._prefix, event_id).rate(rate.action, user_id))
        result = await self._run(
            self._hold,
            keys,
            [
                reservation_id,
                ttl_ms,
                user_id,
                max_seats_per_buyer,
                rate.limit,
                rate.window_ms,
                *seat_ids,
            ],
        )
        outcome, *seats = (_text(item) for item in result)
        if outcome == "limited":
            raise TooManyHolds(rate, seconds_to_wait(int(seats[0])))
        if outcome == "no_event":
            raise EventNotOnSale(f"event {event_id} has no seats on sale")
        if outcome == "unknown":
            raise UnknownSeats(seats)
        if outcome == "limit":
            raise PurchaseLimitReached(max_seats_per_buyer, int(seats[0]))
        if outcome == "taken":
            raise SeatsTaken(seats)

    async def release(
        self, event_id: str, reservation_id: str, user_id: str, seat_ids: list[str]
    ) -> int:
        """Put back on sale the seats still held by the reservation; how many were freed."""
        freed = await self._run(
            self._release,
            self._keys(event_id, reservation_id),
            [reservation_id, user_id, *seat_ids],
        )
        return int(freed)

    async def sell(
        self,
        event_id: str,
        reservation_id: str,
        user_id: str,
        seat_ids: list[str],
        *,
        end_session: bool = False,
    ) -> list[str]:
        """Mark the seats sold to the reservation, and with `end_session` end the buyer's
        waiting-room session; the seats it did not hold before."""
        sale = SeatSale(reservation_id, user_id, seat_ids, end_session)
        (surprises,) = await self.sell_many(event_id, [sale])
        return surprises

    async def sell_many(self, event_id: str, sales: Sequence[SeatSale]) -> list[list[str]]:
        """`sell` for many reservations of one sale, in one round trip; each one's surprises."""
        sale_keys = SaleKeys(self._prefix, event_id)
        keys = [
            sale_keys.seats,
            sale_keys.hold_deadlines,
            sale_keys.hold_owners,
            sale_keys.buyer_seats,
            sale_keys.active,
            *(sale_keys.hold(sale.reservation_id) for sale in sales),
        ]
        listed = [
            [sale.reservation_id, sale.user_id, sale.end_session, sale.seat_ids] for sale in sales
        ]
        results = await self._run(self._sell_many, keys, [json.dumps(listed)])
        surprises = []
        for sale, (ended, seats) in zip(sales, results, strict=True):
            if not ended:
                log.warning(
                    "could not end the buyer's waiting-room session; its expiry will",
                    extra={"reservation_id": sale.reservation_id},
                )
            surprises.append([_text(seat) for seat in seats])
        return surprises

    async def expired(self, event_id: str, limit: int) -> list[ExpiredHold]:
        """Up to `limit` holds of the sale whose hold key has expired, oldest first."""
        sale = SaleKeys(self._prefix, event_id)
        found = await self._run(self._expired, [sale.hold_deadlines, sale.hold_owners], [limit])
        holds = []
        for reservation_id, owner in zip(found[::2], found[1::2], strict=True):
            owned = json.loads(owner)
            holds.append(ExpiredHold(_text(reservation_id), owned["user"], owned["seats"]))
        return holds

    async def _run(self, script: AsyncScript, keys: list[str], args: list[str | int]) -> Any:
        try:
            return await script(keys=keys, args=args)
        except REDIS_UNAVAILABLE as exc:
            raise TemporaryError("seat inventory is unavailable, try again") from exc


def _text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value
