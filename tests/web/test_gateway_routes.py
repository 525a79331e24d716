"""The gateway's routing table: each call the page and an organiser make reaches the service
that serves it, directly or through the gateway the chart's Ingress sends it to."""

from pathlib import Path

import pytest
import yaml
from ticketing.gateway.routes import COMPONENTS, ROUTES, component_for
from ticketing.gateway.settings import GatewaySettings

VALUES = Path(__file__).resolve().parents[2] / "charts" / "ticketing" / "values.yaml"
# The chart's component that forwards by routes.py.
GATEWAY = "gateway"
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


def ingress_rules() -> list[dict[str, str]]:
    rules: list[dict[str, str]] = yaml.safe_load(VALUES.read_text())["ingress"]["paths"]
    return rules


def segments(path: str) -> list[str]:
    return [part for part in path.strip("/").split("/") if part]


def ingress_component(path: str) -> str:
    """Who the chart's Ingress sends `path` to: the longest matching `Prefix` path wins."""
    matching = [
        rule
        for rule in ingress_rules()
        if segments(path)[: len(segments(rule["path"]))] == segments(rule["path"])
    ]
    return max(matching, key=lambda rule: len(segments(rule["path"])))["component"]


def served_in_cluster_by(path: str) -> str:
    """The service that answers `path` in a cluster: the Ingress's target, or, when that is
    the gateway, the service the gateway forwards it to."""
    component = ingress_component(path)
    return component_for(path) if component == GATEWAY else component


@pytest.mark.parametrize(("path", "component"), CALLS.items(), ids=list(CALLS))
def test_gateway_sends_each_call_to_the_service_that_serves_it(path: str, component: str) -> None:
    assert component_for(path) == component


@pytest.mark.parametrize(("path", "component"), CALLS.items(), ids=list(CALLS))
def test_chart_ingress_delivers_each_call_to_the_service_that_serves_it(
    path: str, component: str
) -> None:
    assert served_in_cluster_by(path) == component


@pytest.mark.parametrize(
    "rule",
    [rule for rule in ingress_rules() if rule["component"] != GATEWAY],
    ids=lambda rule: rule["path"],
)
def test_chart_ingress_bypasses_the_gateway_only_where_routes_agree(rule: dict[str, str]) -> None:
    below = rule["path"].rstrip("/") + "/any/path/below"

    assert component_for(rule["path"]) == rule["component"]
    assert component_for(below) == rule["component"]


def test_chart_ingress_sends_the_waiting_room_straight_to_the_queue() -> None:
    assert ingress_component("/sales/spring/queue/ws") == "queue"
    assert ingress_component("/app/") == "queue"
    assert ingress_component("/events/spring/seats") == GATEWAY
    assert ingress_component("/") == GATEWAY


def test_prefix_matches_whole_segments_only() -> None:
    assert component_for("/authors") == "queue"
    assert component_for("/events-archive") == "queue"
    assert component_for("/events/spring/seats-left") == "event"


def test_every_routed_component_has_a_gateway_url_setting() -> None:
    settings = GatewaySettings()
    assert {route.component for route in ROUTES} == set(COMPONENTS)
    assert all(settings.upstream(name).startswith("http") for name in COMPONENTS)
