"""Per-user rate limits on a sale's busiest requests (join, hold), counted in Redis so that every
replica shares them: a fixed-window counter per (sale, user, action), one EVALSHA a request."""

import math
from dataclasses import dataclass
from typing import Annotated

from fastapi import Depends, HTTPException, status
from starlette.requests import HTTPConnection

from ticketing.common.redis_client import RedisClient
from ticketing.common.redis_keys import SaleKeys

# Counts one request; the first one of a window starts the window's expiry. Returns the window's
# milliseconds left once the count is over the limit, 0 while it is within. Refused requests
# count too, but never extend the window, so a client retrying in a loop is let in when it ends.
# A Lua function, so that a script doing more (the queue's coalesced joins) counts the same way.
COUNT_REQUEST_LUA = """
local function count_request(key, limit, window_ms)
  local count = redis.call('INCR', key)
  local left = redis.call('PTTL', key)
  if left < 0 then
    redis.call('PEXPIRE', key, window_ms)
    left = window_ms
  end
  if count > limit then
    return left
  end
  return 0
end
"""

# KEYS: the counter. ARGV: limit, window (ms).
_COUNT = COUNT_REQUEST_LUA + "return count_request(KEYS[1], tonumber(ARGV[1]), tonumber(ARGV[2]))"


@dataclass(frozen=True)
class RateRule:
    """At most `limit` requests of `action` per user and sale in each `window_seconds`.

    `action` names the requests in the Redis key and in the refusal ("too many holds: ...").
    """

    action: str
    limit: int
    window_seconds: float

    @property
    def window_ms(self) -> int:
        return math.ceil(self.window_seconds * 1000)


def seconds_to_wait(left_ms: int) -> int:
    """Whole seconds to wait, from the milliseconds `count_request` returned (0: go ahead)."""
    return math.ceil(left_ms / 1000)


class RateLimiter:
    """Counts requests against `RateRule`s on a Redis client; `RateLimiterDep` gives routes one."""

    def __init__(self, client: RedisClient, prefix: str) -> None:
        self._prefix = prefix
        # register_script keeps the SHA and falls back to EVAL once after a Redis restart.
        self._count = client.register_script(_COUNT)

    async def wait_seconds(self, rule: RateRule, event_id: str, user_id: str) -> int:
        """Count the request: 0 if it may go ahead, else the whole seconds until it may."""
        key = SaleKeys(self._prefix, event_id).rate(rule.action, user_id)
        left_ms = await self._count(keys=[key], args=[rule.limit, rule.window_ms])
        return seconds_to_wait(int(left_ms))

    async def enforce(self, rule: RateRule, event_id: str, user_id: str) -> None:
        """Count the request; over the limit, refuse it with a 429 saying when to come back."""
        if wait := await self.wait_seconds(rule, event_id, user_id):
            raise refusal(rule, wait)


def refusal(rule: RateRule, wait: int) -> HTTPException:
    """The 429 that refuses a request over `rule`, saying when to come back."""
    return HTTPException(
        status.HTTP_429_TOO_MANY_REQUESTS,
        f"too many {rule.action}: try again in {wait} s",
        _retry_after(wait),
    )


def _retry_after(wait: int) -> dict[str, str]:
    return {"Retry-After": str(wait)}


async def get_rate_limiter(connection: HTTPConnection) -> RateLimiter:
    """A limiter on the Redis client the app's lifespan opened (`app.state.redis`); making one
    costs a hash of the script, a few microseconds, and follows the client if it is reopened."""
    state = connection.app.state
    return RateLimiter(state.redis, state.settings.redis_key_prefix)


RateLimiterDep = Annotated[RateLimiter, Depends(get_rate_limiter)]
