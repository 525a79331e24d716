"""The one source of settings: environment variables prefixed TICKETING_, validated at startup.

Each service subclasses `CommonSettings` (with its own extra prefix where it has its own fields)
and builds it through a cached `get_settings()` that tests override with `cache_clear()`.
"""

from functools import lru_cache
from typing import Literal, Self

from pydantic import SecretStr, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

# Usable only on a developer's machine: production refuses to start with either of them.
LOCAL_JWT_SECRET = "local-only-jwt-secret-change-me-0123456789"
LOCAL_ADMISSION_SECRET = "local-only-admission-secret-change-me-012345"


class InsecureSettings(ValueError):
    """A production deployment was configured with a local-only secret."""


class CommonSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="TICKETING_", extra="ignore", frozen=True)

    environment: Literal["local", "production"] = "local"
    redis_url: str = "redis://127.0.0.1:16379/0"
    database_url: str = "mysql+asyncmy://ticketing:ticketing-local@127.0.0.1:13306/ticketing"
    kafka_bootstrap: str = "127.0.0.1:19092"

    # Namespaces that let several sales, test runs or tenants share one Redis and one broker.
    redis_key_prefix: str = "tk"
    kafka_topic_prefix: str = ""

    jwt_secret: SecretStr = SecretStr(LOCAL_JWT_SECRET)
    jwt_audience: str = "ticketing"
    jwt_issuer: str = "ticketing-user"
    jwt_ttl_seconds: int = 3600
    admission_secret: SecretStr = SecretStr(LOCAL_ADMISSION_SECRET)

    log_level: str = "INFO"
    # No API takes more than a few KiB; larger bodies are refused with 413 before parsing.
    max_request_bytes: int = 64 * 1024
    # CPU seconds per route and background loop on /metrics (ticketing.common.cpu).
    cpu_accounting: bool = False

    @model_validator(mode="after")
    def _refuse_local_secrets_in_production(self) -> Self:
        if self.environment == "production":
            for name, local in (
                ("jwt_secret", LOCAL_JWT_SECRET),
                ("admission_secret", LOCAL_ADMISSION_SECRET),
            ):
                value = getattr(self, name).get_secret_value()
                if value == local or len(value) < 32:
                    raise InsecureSettings(
                        f"TICKETING_{name.upper()} must be set to a secret of 32+ characters "
                        "in production"
                    )
        return self


@lru_cache
def get_settings() -> CommonSettings:
    return CommonSettings()
