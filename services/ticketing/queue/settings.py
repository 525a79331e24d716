"""The queue service's settings: the common ones plus the waiting room's timings."""

from functools import lru_cache

from pydantic import Field

from ticketing.common.ratelimit import RateRule
from ticketing.common.settings import CommonSettings


class QueueSettings(CommonSettings):
    # TICKETING_QUEUE_ADMISSION_TICK_SECONDS etc.
    queue_admission_tick_seconds: float = Field(default=0.1, gt=0)
    queue_push_interval_seconds: float = Field(
        default=1.0, gt=0, le=2, description="how often every waiting socket gets its position"
    )
    queue_away_after_seconds: float = Field(
        default=5.0, gt=0, description="no socket or poll for this long: away, turn is parked"
    )
    queue_grace_seconds: float = Field(
        default=30.0, gt=0, description="away for this long: removed from the line"
    )
    queue_offer_ttl_seconds: int = Field(
        default=120, gt=0, description="how long a waiting-list offer lasts after a sell-out"
    )
    queue_discovery_seconds: float = Field(default=5.0, gt=0)
    queue_run_admission: bool = Field(
        default=True, description="run an admission worker inside the HTTP process too"
    )
    # A join is idempotent (same place again), so these only keep one user from using up CPU.
    queue_join_rate_limit: int = Field(
        default=20, gt=0, description="HTTP joins per user and sale in each rate window"
    )
    queue_socket_rate_limit: int = Field(
        default=20, gt=0, description="WebSocket connection attempts per user and sale a window"
    )
    queue_rate_window_seconds: float = Field(default=10.0, gt=0)

    @property
    def join_rate(self) -> RateRule:
        return RateRule("joins", self.queue_join_rate_limit, self.queue_rate_window_seconds)

    @property
    def socket_rate(self) -> RateRule:
        return RateRule("connections", self.queue_socket_rate_limit, self.queue_rate_window_seconds)


@lru_cache
def get_settings() -> QueueSettings:
    return QueueSettings()
