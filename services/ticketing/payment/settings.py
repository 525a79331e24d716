"""The payment service's settings: the common ones plus the simulated gateway and the price."""

from collections.abc import Mapping
from functools import lru_cache
from typing import ClassVar

from pydantic import Field

from ticketing.common.settings import CommonSettings


class PaymentSettings(CommonSettings):
    # The simulated payment provider's latency, and the share of charges it declines (0 = none,
    # 1 = all). TICKETING_PAYMENT_*: the component called gateway is another thing.
    payment_gateway_latency_seconds: float = Field(default=0.05, ge=0)
    payment_gateway_failure_rate: float = Field(default=0.0, ge=0, le=1)
    seat_price_cents: int = Field(default=5000, gt=0)
    payment_consumer_group: str = "payment"

    RENAMED: ClassVar[Mapping[str, str]] = {
        "TICKETING_GATEWAY_LATENCY_SECONDS": "payment_gateway_latency_seconds",
        "TICKETING_GATEWAY_FAILURE_RATE": "payment_gateway_failure_rate",
        "TICKETING_CONSUMER_GROUP": "payment_consumer_group",
    }


@lru_cache
def get_settings() -> PaymentSettings:
    return PaymentSettings()
