"""The gateway's routing table: each call the page and an organiser make reaches the service
that serves it, and the chart's Ingress routes the same paths to the same services."""

from pathlib import Path

import pytest
import yaml
from ticketing.gateway.routes import COMPONENTS, ROUTES, component_for
from ticketing.gateway.settings import GatewaySettings

VALUES = Path(__file__).resolve().parents[2] / "charts" / "ticketing" / "values.yaml"
# Paths of the calls the services answer, and who answers each.
CALLS = {
    "/users": "user",
    "/users/me": "user",
    "/auth/login": "user",
    "/events": "event",
    "/events/spring": "event",
    "/venues/main-hall": "seat",
    "/events/spring/inventory": "seat",
    "/events/spring/seats": "seat",
    "/events/spring/reservations": "reservation",
    "/reservations/r1": "reservation",
    "/reservations/r1/cancel": "reservation",
    "/payments/r1": "payment",
    "/sales/spring/queue": "queue",
    "/sales/spring/queue/ws": "queue",
    "/sales/spring/fairness/order": "queue",
    "/app/": "queue",
    "/app/app.js": "queue",
}
# The chart's `Prefix` paths cannot express a sale's sub-resources under /events (they need
# ingress-nginx regex paths); until the chart has them, these calls reach the event service.
CHART_MISROUTES = {
    "/venues/main-hall",
    "/events/spring/inventory",
    "/events/spring/seats",
    "/events/spring/reservations",
}


def ingress_component(path: str) -> str:
    """Who the chart's Ingress sends `path` to: the longest matching `Prefix` path wins."""
    paths = yaml.safe_load(VALUES.read_text())["ingress"]["paths"]
    segments = path.strip("/").split("/")

    def prefix_of(rule: dict[str, str]) -> list[str]:
        return [part for part in rule["path"].strip("/").split("/") if part]

    matching = [rule for rule in paths if segments[: len(prefix_of(rule))] == prefix_of(rule)]
    return str(max(matching, key=lambda rule: len(prefix_of(rule)))["component"])


@pytest.mark.parametrize(("path", "component"), CALLS.items(), ids=list(CALLS))
def test_gateway_sends_each_call_to_the_service_that_serves_it(path: str, component: str) -> None:
    assert component_for(path) == component


@pytest.mark.parametrize(
    "path",
    [
        pytest.param(
            path,
            marks=pytest.mark.xfail(
                strict=True, reason="the chart's Ingress sends it to the wrong service"
            ),
        )
        if path in CHART_MISROUTES
        else path
        for path in CALLS
    ],
    ids=list(CALLS),
)
def test_chart_ingress_routes_each_call_as_the_gateway_does(path: str) -> None:
    assert ingress_component(path) == component_for(path)


def test_prefix_matches_whole_segments_only() -> None:
    assert component_for("/authors") == "queue"
    assert component_for("/events-archive") == "queue"
    assert component_for("/events/spring/seats-left") == "event"


def test_every_routed_component_has_a_gateway_url_setting() -> None:
    settings = GatewaySettings()
    assert {route.component for route in ROUTES} == set(COMPONENTS)
    assert all(settings.upstream(name).startswith("http") for name in COMPONENTS)
