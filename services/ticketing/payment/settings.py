"""The payment service's settings: the common ones plus the simulated gateway and the price."""

from functools import lru_cache

from pydantic import Field

from ticketing.common.settings import CommonSettings


class PaymentSettings(CommonSettings):
    gateway_latency_seconds: float = Field(default=0.05, ge=0)
    # Share of charges the simulated provider declines (0 = none, 1 = all).
    gateway_failure_rate: float = Field(default=0.0, ge=0, le=1)
    seat_price_cents: int = Field(default=5000, gt=0)
    consumer_group: str = "payment"


@lru_cache
def get_settings() -> PaymentSettings:
    return PaymentSettings()
