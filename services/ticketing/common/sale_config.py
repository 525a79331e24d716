"""A sale's runtime configuration: written by the operator, read live by the services.

It lives in the sale's Redis hash (`SaleKeys.config`). The queue service reads it on every
admission tick and reservation reads the hold TTL from it, so a change to the TicketEvent
reaches a running sale within seconds, without a restart.
"""

import json
import math
from collections.abc import Mapping
from datetime import datetime
from enum import StrEnum

from pydantic import BaseModel, Field, model_validator
from redis.typing import EncodableT, FieldT

from ticketing.common.redis_client import RedisClient
from ticketing.common.redis_keys import SaleKeys

# The least time an admitted person is given to pick seats and hold them, on top of the wait
# for service that the rule below allows for.
SHOPPING_SECONDS = 20


def shortest_session_seconds(max_active: int, tps: float) -> int:
    """The shortest session (= admission token lifetime) with which an admitted person can
    always hold before the token expires, whatever the crowd:

        session_ttl_seconds >= max_active / tps + SHOPPING_SECONDS

    The admission rate is the rate the platform is sized to serve admitted people at, and the
    cap lets `max_active` of them in at once (a full cap freed together, or admitted in one
    go). Served at `tps`, the last of them is reached `max_active / tps` seconds after being
    admitted and must still hold a valid token then, with time left to pick seats. The crowd's
    size does not enter: only admitted people shop, and never more than the cap. Nor does the
    hold's TTL: the token is checked once, when the seats are held, and the hold then runs on
    its own TTL through payment, which needs no token.
    """
    return math.ceil(max_active / tps + SHOPPING_SECONDS)


# What one buyer may hold and buy together in a sale unless the TicketEvent says otherwise: as
# many seats as one hold takes.
DEFAULT_MAX_SEATS_PER_BUYER = 4


class Phase(StrEnum):
    SCHEDULED = "Scheduled"
    PRE_QUEUE = "PreQueue"
    ON_SALE = "OnSale"
    SOLD_OUT = "SoldOut"
    CLOSED = "Closed"


class SaleConfig(BaseModel):
    event_id: str
    tps: float = Field(gt=0, description="people admitted per second")
    max_active: int = Field(gt=0, description="admitted sessions allowed at once")
    session_ttl_seconds: int = Field(default=300, gt=0)
    hold_ttl_seconds: int = Field(default=300, gt=0)
    max_seats_per_buyer: int = Field(
        default=DEFAULT_MAX_SEATS_PER_BUYER,
        gt=0,
        description="seats one buyer may hold and buy together in this sale",
    )
    opens_at: datetime
    closes_at: datetime
    pre_queue_minutes: int = Field(default=30, ge=0)
    phase: Phase = Phase.SCHEDULED
    paused: bool = False
    maintenance: bool = False
    message: str = ""

    @model_validator(mode="after")
    def _window_is_ordered(self) -> "SaleConfig":
        if self.closes_at <= self.opens_at:
            raise ValueError("closes_at must be after opens_at")
        return self


async def write_sale_config(client: RedisClient, prefix: str, config: SaleConfig) -> None:
    """Replace the sale's configuration in one step."""
    key = SaleKeys(prefix, config.event_id).config
    fields: Mapping[FieldT, EncodableT] = {
        name: json.dumps(value) for name, value in config.model_dump(mode="json").items()
    }
    async with client.pipeline(transaction=True) as pipe:
        pipe.delete(key)
        pipe.hset(key, mapping=fields)
        await pipe.execute()


async def read_sale_config(client: RedisClient, prefix: str, event_id: str) -> SaleConfig | None:
    """The sale's configuration, or None when the operator has not written one (or removed it)."""
    raw = await client.hgetall(SaleKeys(prefix, event_id).config)
    if not raw:
        return None
    return SaleConfig.model_validate({_text(k): json.loads(v) for k, v in raw.items()})


def _text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value


async def delete_sale_config(client: RedisClient, prefix: str, event_id: str) -> None:
    await client.delete(SaleKeys(prefix, event_id).config)
