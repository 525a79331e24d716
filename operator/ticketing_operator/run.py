"""Runs the operator as a process: `python -m ticketing_operator` or `python -m ticketing operator`."""

import kopf
from ticketing.common.observability import configure_logging

import ticketing_operator.handlers  # noqa: F401  (importing it registers the handlers with kopf)
from ticketing_operator.settings import get_settings


def run() -> None:
    """The operator until the process is stopped; logging is the caller's to configure."""
    settings = get_settings()
    namespaces = settings.namespaces
    kopf.run(
        clusterwide=not namespaces,
        namespaces=namespaces,
        standalone=settings.operator_standalone or None,
        liveness_endpoint=(
            f"http://0.0.0.0:{settings.operator_health_port}/healthz"
            if settings.operator_health_port
            else None
        ),
        memo=kopf.Memo(operator_settings=settings),
    )


def main() -> None:
    configure_logging("operator", get_settings().log_level)
    run()
