"""The one source of settings: environment variables prefixed TICKETING_, validated at startup.

Each service subclasses `CommonSettings` (with its own extra prefix where it has its own fields)
and builds it through a cached `get_settings()` that tests override with `cache_clear()`.
"""

import hashlib
import hmac
import os
import warnings
from collections.abc import Mapping
from functools import lru_cache
from typing import Any, ClassVar, Literal, Self

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from pydantic import Field, SecretStr, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from ticketing.common.keys import private_keys
from ticketing.common.topics import TopicFamily, TopicSpec

# Usable only on a developer's machine (local runs, ./dev demo, the tests), where they sign when
# no key is set: production refuses to start with any of them.
LOCAL_LOGIN_SIGNING_KEY = "77ac504861d829e56f4cb4a7c635022be4d878b7c7429df516eb3d78a4548aa3"
LOCAL_ADMISSION_SIGNING_KEY = "526a2509204f006d8711b1802814044bc3f590a3da91b6454e5b4cc7248f1eba"
LOCAL_OPERATOR_TOKEN = "local-only-operator-token-change-me-0123456789"

TokenKindName = Literal["login", "admission"]


class InsecureSettings(ValueError):
    """A production deployment was configured with a local-only secret, or without keys."""


def topic_variable(family: TopicFamily, field: str) -> str:
    """The environment variable that sets `field` (partitions, replication_factor,
    min_insync_replicas) of the topics of `family`."""
    return f"TICKETING_KAFKA_{family.upper()}_{field.upper()}"


def token_digest(token: str) -> str:
    """What a service keeps of a service token: its SHA-256, never the token itself."""
    return hashlib.sha256(token.encode()).hexdigest()


class CommonSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="TICKETING_", extra="ignore", frozen=True)
    # Old variable -> the field it set, for names a component moved into its own namespace:
    # read for one release with a FutureWarning, unless the new variable is set too.
    RENAMED: ClassVar[Mapping[str, str]] = {}

    def __init__(self, **values: Any) -> None:
        for old, field in self.RENAMED.items():
            if old not in os.environ:
                continue
            new = f"TICKETING_{field.upper()}"
            warnings.warn(
                f"{old} is deprecated and will be ignored in the next release: set {new}",
                FutureWarning,
                stacklevel=2,
            )
            if field not in values and new not in os.environ:
                values[field] = os.environ[old]
        super().__init__(**values)

    environment: Literal["local", "production"] = "local"
    redis_url: str = "redis://127.0.0.1:16379/0"
    # true: TICKETING_REDIS_URL names any one node of a Redis Cluster, and the client follows the
    # cluster's slots and failovers (ticketing.common.redis_client).
    redis_cluster: bool = False
    database_url: str = "mysql+asyncmy://ticketing:ticketing-local@127.0.0.1:13306/ticketing"
    kafka_bootstrap: str = "127.0.0.1:19092"
    kafka_wait_seconds: float = Field(
        default=300.0,
        ge=0,
        description="how long a starting process waits for a Kafka broker to answer, then exits",
    )

    # Namespaces that let several sales, test runs or tenants share one Redis and one broker.
    redis_key_prefix: str = "tk"
    kafka_topic_prefix: str = ""

    # How a missing topic is created, per family (ticketing.common.topics.TopicFamily); an
    # existing topic is never changed, only reported when it differs. Replication factor 1
    # suits the one local broker alone: a managed Kafka wants 3 and min.insync.replicas 2, so
    # acks=all survives one broker down. The main topics' partitions bound how many consumers
    # of one group have work: at least the largest maxReplicas the chart lets the reservation
    # and payment autoscalers reach (8, charts/ticketing/values.yaml).
    kafka_main_partitions: int = Field(default=8, ge=1)
    kafka_main_replication_factor: int = Field(default=1, ge=1)
    kafka_main_min_insync_replicas: int | None = Field(default=None, ge=1)
    # Read by the one retry consumer: a few partitions are plenty.
    kafka_retry_partitions: int = Field(default=3, ge=1)
    kafka_retry_replication_factor: int = Field(default=1, ge=1)
    kafka_retry_min_insync_replicas: int | None = Field(default=None, ge=1)
    kafka_dead_letter_partitions: int = Field(default=3, ge=1)
    kafka_dead_letter_replication_factor: int = Field(default=1, ge=1)
    kafka_dead_letter_min_insync_replicas: int | None = Field(default=None, ge=1)

    # Ed25519 private keys, 64 hex characters each, comma-separated: the first signs, every one
    # is published in the signer's JWKS, so a second key rotates in (or out) without voiding a
    # token. Set on the signer alone: the user service signs logins, the queue admissions.
    login_signing_keys: SecretStr = SecretStr("")
    admission_signing_keys: SecretStr = SecretStr("")
    # Where every other component fetches the signer's public keys (GET /.well-known/jwks.json).
    # Empty on a developer's machine: the public halves of the signing keys are used directly.
    login_jwks_url: str = ""
    admission_jwks_url: str = ""
    # A fetched key set is used this long, then fetched again: a retired key stops verifying
    # within it. An unknown key id is looked up at once (at most once a second).
    jwks_max_age_seconds: float = 60.0
    jwt_audience: str = "ticketing"
    jwt_issuer: str = "ticketing-user"
    jwt_ttl_seconds: int = 3600
    # SHA-256 (hex, comma-separated) of the operator's service tokens: the operator may create
    # and update sales with one, and do nothing else. Empty on a developer's machine: the local
    # operator token's digest.
    operator_token_sha256: str = ""

    # A background loop (consumer, relay, sweeper, admission, retry worker) that has not
    # finished a round for this long, plus its own interval, fails /healthz: the pod restarts.
    liveness_seconds: float = 60.0

    # How long a consumer group remembers the message ids it applied, to skip a redelivery
    # (`ticketing.common.dedup`: an id is kept one to two windows). A duplicate can come back as
    # late as a whole retry ladder (`ticketing.retry.policy`): the longest, the refund's, waits
    # 5+10+20+40+80+160+320+600+600 = 1,835 s between its ten deliveries; add the retry lease
    # (30 s) and a crashed consumer's redelivery (session timeout and restart, a few minutes).
    # An hour covers that with room; tests/retry checks it against the policies.
    dedup_window_seconds: int = Field(default=3600, ge=1)

    log_level: str = "INFO"
    # No API takes more than a few KiB; larger bodies are refused with 413 before parsing.
    max_request_bytes: int = 64 * 1024
    # CPU seconds per route and background loop on /metrics (ticketing.common.cpu).
    cpu_accounting: bool = False

    @field_validator("login_signing_keys", "admission_signing_keys")
    @classmethod
    def _readable_keys(cls, value: SecretStr) -> SecretStr:
        private_keys(value.get_secret_value())
        return value

    @model_validator(mode="after")
    def _insync_replicas_within_replication(self) -> Self:
        for family in TopicFamily:
            spec = self.topic_spec(family)
            if (spec.min_insync_replicas or 0) > spec.replication_factor:
                raise ValueError(
                    f"{topic_variable(family, 'min_insync_replicas')}="
                    f"{spec.min_insync_replicas} exceeds "
                    f"{topic_variable(family, 'replication_factor')}="
                    f"{spec.replication_factor}: no write could ever be acknowledged"
                )
        return self

    @model_validator(mode="after")
    def _refuse_local_secrets_in_production(self) -> Self:
        if self.environment != "production":
            return self
        for kind, local in (
            ("login", LOCAL_LOGIN_SIGNING_KEY),
            ("admission", LOCAL_ADMISSION_SIGNING_KEY),
        ):
            configured = getattr(self, f"{kind}_signing_keys").get_secret_value()
            if local in configured.lower():
                raise InsecureSettings(
                    f"TICKETING_{kind.upper()}_SIGNING_KEYS holds the local-only key"
                )
            if not configured and not getattr(self, f"{kind}_jwks_url"):
                raise InsecureSettings(
                    f"TICKETING_{kind.upper()}_JWKS_URL must say where the {kind} signer "
                    "publishes its keys in production"
                )
        if token_digest(LOCAL_OPERATOR_TOKEN) in self.operator_token_sha256:
            raise InsecureSettings("TICKETING_OPERATOR_TOKEN_SHA256 holds the local-only token")
        return self

    def topic_spec(self, family: TopicFamily) -> TopicSpec:
        """How a missing topic of `family` is created."""
        return TopicSpec(
            family=family,
            partitions=getattr(self, f"kafka_{family}_partitions"),
            replication_factor=getattr(self, f"kafka_{family}_replication_factor"),
            min_insync_replicas=getattr(self, f"kafka_{family}_min_insync_replicas"),
        )

    def topic_specs(self, families: Mapping[str, TopicFamily]) -> dict[str, TopicSpec]:
        """Each broker-side topic name -> how it is created, from its family."""
        return {name: self.topic_spec(family) for name, family in families.items()}

    def signing_keys(self, kind: TokenKindName) -> tuple[Ed25519PrivateKey, ...]:
        """The keys this process signs `kind` tokens with (the first signs); none in production
        unless it is that kind's signer."""
        configured = getattr(self, f"{kind}_signing_keys").get_secret_value()
        if not configured and self.environment == "local":
            configured = {
                "login": LOCAL_LOGIN_SIGNING_KEY,
                "admission": LOCAL_ADMISSION_SIGNING_KEY,
            }[kind]
        return private_keys(configured)

    def signs(self, kind: TokenKindName) -> bool:
        """Whether this process was given `kind` signing keys (it is that kind's signer)."""
        return bool(getattr(self, f"{kind}_signing_keys").get_secret_value())

    def jwks_url(self, kind: TokenKindName) -> str:
        url: str = getattr(self, f"{kind}_jwks_url")
        return url

    def operator_token_accepted(self, token: str) -> bool:
        digests = [d.strip().lower() for d in self.operator_token_sha256.split(",") if d.strip()]
        if not digests and self.environment == "local":
            digests = [token_digest(LOCAL_OPERATOR_TOKEN)]
        digest = token_digest(token)
        # Every digest compared, in constant time: how far a guess matched never shows.
        return any([hmac.compare_digest(digest, known) for known in digests])


@lru_cache
def get_settings() -> CommonSettings:
    return CommonSettings()
