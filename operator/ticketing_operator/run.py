"""Runs the operator as a process: `python -m ticketing_operator` or `python -m ticketing operator`."""

import kopf
from ticketing.common.observability import configure_logging

import ticketing_operator.handlers  # noqa: F401  (importing it registers the handlers with kopf)
from ticketing_operator.settings import get_settings


def main() -> None:
    settings = get_settings()
    configure_logging("operator", settings.log_level)
    namespaces = settings.namespaces
    kopf.run(
        clusterwide=not namespaces,
        namespaces=namespaces,
        standalone=settings.operator_standalone or None,
        liveness_endpoint=settings.operator_liveness_endpoint or None,
        memo=kopf.Memo(operator_settings=settings),
    )
