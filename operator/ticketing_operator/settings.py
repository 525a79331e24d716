"""The operator's settings: the common ones plus where the services and the cluster are.

Every field reads from a `TICKETING_OPERATOR_*` environment variable (the common fields keep
their `TICKETING_*` names). Tests hand a ready instance to the operator through kopf's memo.
"""

from functools import lru_cache
from typing import Self

from pydantic import SecretStr, model_validator
from ticketing.common.settings import LOCAL_OPERATOR_TOKEN, CommonSettings, InsecureSettings


class OperatorSettings(CommonSettings):
    # Base URLs of the event and seat services; empty skips that step (status says so).
    operator_events_url: str = ""
    operator_seats_url: str = ""
    operator_http_timeout_seconds: float = 10.0
    # The operator's own credential: the services hold only its SHA-256
    # (TICKETING_OPERATOR_TOKEN_SHA256) and let it create and update sales, nothing else.
    # Empty on a developer's machine: the local-only token.
    operator_token: SecretStr = SecretStr("")

    # Empty: in-cluster service account, else the default kubeconfig.
    operator_kubeconfig: str = ""
    # The KopfPeering object several replicas coordinate through; see docs/operator.md.
    operator_peering: str = "ticketing"
    operator_standalone: bool = False
    # Only these namespaces (comma-separated); empty watches the whole cluster.
    operator_namespaces: str = ""
    # Port of the liveness probe's /healthz (kopf's endpoint, on all interfaces); 0 serves none.
    operator_health_port: int = 0

    # The retry-worker Deployment, in each TicketEvent's namespace, unless its spec names one.
    operator_retry_deployment: str = "ticketing-retry-worker"
    # How long a deleted sale shows "Closed" to its waiters before its configuration goes.
    operator_close_grace_seconds: float = 10.0

    @model_validator(mode="after")
    def _own_token_in_production(self) -> Self:
        if self.environment == "production" and self.services_configured:
            token = self.operator_token.get_secret_value()
            if token == LOCAL_OPERATOR_TOKEN or len(token) < 32:
                raise InsecureSettings(
                    "TICKETING_OPERATOR_TOKEN must be set to a token of 32+ characters "
                    "in production"
                )
        return self

    @property
    def service_token(self) -> str:
        """What the operator sends as its bearer token."""
        token = self.operator_token.get_secret_value()
        return token or (LOCAL_OPERATOR_TOKEN if self.environment == "local" else "")

    @property
    def services_configured(self) -> bool:
        return bool(self.operator_events_url and self.operator_seats_url)

    @property
    def namespaces(self) -> list[str]:
        return [n.strip() for n in self.operator_namespaces.split(",") if n.strip()]


@lru_cache
def get_settings() -> OperatorSettings:
    return OperatorSettings()
