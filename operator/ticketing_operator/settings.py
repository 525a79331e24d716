"""The operator's settings: the common ones plus where the services and the cluster are.

Every field reads from a `TICKETING_OPERATOR_*` environment variable (the common fields keep
their `TICKETING_*` names). Tests hand a ready instance to the operator through kopf's memo.
"""

from functools import lru_cache

from ticketing.common.settings import CommonSettings


class OperatorSettings(CommonSettings):
    # Base URLs of the event and seat services; empty skips that step (status says so).
    operator_events_url: str = ""
    operator_seats_url: str = ""
    operator_http_timeout_seconds: float = 10.0

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

    @property
    def services_configured(self) -> bool:
        return bool(self.operator_events_url and self.operator_seats_url)

    @property
    def namespaces(self) -> list[str]:
        return [n.strip() for n in self.operator_namespaces.split(",") if n.strip()]


@lru_cache
def get_settings() -> OperatorSettings:
    return OperatorSettings()
