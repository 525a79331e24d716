"""Settings of the retry consumer and the retry workers (TICKETING_RETRY_* on top of the shared ones)."""

from functools import lru_cache

from pydantic import Field

from ticketing.common.settings import CommonSettings


class RetrySettings(CommonSettings):
    retry_poll_interval_ms: int = Field(
        default=100, gt=0, description="how long an idle worker waits before looking again"
    )
    retry_lease_ms: int = Field(
        default=30_000,
        gt=0,
        description="how long a claimed message is a worker's before it returns",
    )
    retry_claim_batch: int = Field(default=500, gt=0, description="messages claimed at once")
    retry_metrics_port: int = Field(
        default=9102, ge=0, description="where /metrics is served; 0 serves none"
    )


@lru_cache
def get_settings() -> RetrySettings:
    return RetrySettings()
