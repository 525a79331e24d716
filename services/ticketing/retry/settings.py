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
    retry_park_replicas: int | None = Field(
        default=None,
        ge=0,
        description=(
            "replicas that must confirm a parked message before its Kafka offset is committed;"
            " unset: 1 on a Redis Cluster (each primary has a replica), 0 on a single server"
        ),
    )
    retry_park_replica_wait_ms: int = Field(
        default=1000,
        gt=0,
        description="how long parking waits for those replicas before the batch is read again",
    )
    retry_metrics_port: int = Field(
        default=9102, ge=0, description="where /metrics is served; 0 serves none"
    )

    @property
    def park_replicas(self) -> int:
        if self.retry_park_replicas is not None:
            return self.retry_park_replicas
        return 1 if self.redis_cluster else 0


@lru_cache
def get_settings() -> RetrySettings:
    return RetrySettings()
