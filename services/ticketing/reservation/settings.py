"""The reservation service's settings: the common ones plus hold and background-task timings."""

from collections.abc import Mapping
from functools import lru_cache
from typing import ClassVar

from pydantic import Field

from ticketing.common.ratelimit import RateRule
from ticketing.common.settings import CommonSettings


class ReservationSettings(CommonSettings):
    # Used only when the operator has not written the sale's runtime configuration.
    default_hold_ttl_seconds: int = Field(default=300, gt=0)
    # The hold key outlives the reservation's expiry by this much, so the sweeper, not Redis,
    # decides when seats go back on sale (the database's status is the authority).
    hold_key_grace_seconds: int = Field(default=60, ge=0)
    outbox_poll_seconds: float = Field(default=0.5, gt=0)
    # Longer than a send waits for the broker (aiokafka's request timeout, 40 s), so a slow
    # send is not repeated beside itself; a repeat would still be harmless.
    outbox_claim_seconds: float = Field(
        default=60.0, gt=0, description="how long a relay owns the rows it is sending"
    )
    sweep_interval_seconds: float = Field(default=1.0, gt=0)
    # A reader waiting for its reservation to settle is woken by a change made in this process;
    # one made by another replica is read from the database this often.
    reservation_wait_recheck_seconds: float = Field(
        default=1.0, gt=0, description="how often a waiting read looks at the database again"
    )
    reservation_consumer_group: str = "reservation"
    # A person holds a few times in a sale; a script retrying in a loop is slowed to this.
    hold_rate_limit: int = Field(default=10, gt=0, description="holds per user and sale a window")
    hold_rate_window_seconds: float = Field(default=10.0, gt=0)

    RENAMED: ClassVar[Mapping[str, str]] = {
        "TICKETING_CONSUMER_GROUP": "reservation_consumer_group"
    }

    @property
    def hold_rate(self) -> RateRule:
        return RateRule("holds", self.hold_rate_limit, self.hold_rate_window_seconds)


@lru_cache
def get_settings() -> ReservationSettings:
    return ReservationSettings()
