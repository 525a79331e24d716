"""Per-user rate limits on a sale's busiest requests (join, hold), counted in Redis so that every
replica shares them: a fixed-window counter per (sale, user, action), counted by the script that
does the request's work (the queue's coalesced joins, the seat hold), so a limit costs no round
trip of its own."""

import math
from dataclasses import dataclass

from fastapi import HTTPException, status

# Counts one request; the first one of a window starts the window's expiry. Returns the window's
# milliseconds left once the count is over the limit, 0 while it is within. Refused requests
# count too, but never extend the window, so a client retrying in a loop is let in when it ends.
# A Lua function, so that every script that counts a request counts it the same way.
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


def refusal_reason(rule: RateRule, wait: int) -> str:
    return f"too many {rule.action}: try again in {wait} s"


def refusal(rule: RateRule, wait: int) -> HTTPException:
    """The 429 that refuses a request over `rule`, saying when to come back."""
    return HTTPException(
        status.HTTP_429_TOO_MANY_REQUESTS, refusal_reason(rule, wait), _retry_after(wait)
    )


def _retry_after(wait: int) -> dict[str, str]:
    return {"Retry-After": str(wait)}
