"""The gateway's routing table: each call the page and an organiser make reaches the service
that serves it, directly or through the gateway the chart's front door (its Ingress, or its
Gateway API HTTPRoute) sends it to. The front doors are read from the rendered chart."""

from functools import cache

import pytest
from ticketing.gateway.routes import COMPONENTS, ROUTES, component_for
from ticketing.gateway.settings import GatewaySettings
from ticketing_dev.controlplane import find_binary
from ticketing_dev.servers import MissingPrerequisite

from tests.charts.chart import by_kind, render
from tests.prerequisites import missing

# The chart's component that forwards by routes.py.
GATEWAY = "gateway"
# The chart's two front doors: the Ingress (Prefix paths) and the HTTPRoute (PathPrefix
# matches); both match whole path segments, and the longest matching path wins.
FRONT_DOORS = ("Ingress", "HTTPRoute")
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


@cache
def front_door_rules(kind: str) -> list[dict[str, str]]:
    """(path, component) of each rule of the rendered Ingress or HTTPRoute."""
    try:
        helm = find_binary("helm")
    except MissingPrerequisite as exc:
        missing(str(exc))
    manifests = render(
        helm, (), "ingress.enabled=true", "gatewayApi.enabled=true",
        "gatewayApi.parentRefs[0].name=web",
    )  # fmt: skip
    (front,) = by_kind(manifests, kind).values()
    if kind == "Ingress":
        pairs = [(p["path"], p["backend"]["service"]["name"])
                 for p in front["spec"]["rules"][0]["http"]["paths"]]  # fmt: skip
    else:
        pairs = [(m["path"]["value"], rule["backendRefs"][0]["name"])
                 for rule in front["spec"]["rules"] for m in rule["matches"]]  # fmt: skip
    return [{"path": path, "component": name.removeprefix("ticketing-")} for path, name in pairs]


def segments(path: str) -> list[str]:
    return [part for part in path.strip("/").split("/") if part]


def front_door_component(kind: str, path: str) -> str:
    """Who the chart's front door sends `path` to: the longest matching path wins."""
    matching = [
        rule
        for rule in front_door_rules(kind)
        if segments(path)[: len(segments(rule["path"]))] == segments(rule["path"])
    ]
    return max(matching, key=lambda rule: len(segments(rule["path"])))["component"]


def served_in_cluster_by(kind: str, path: str) -> str:
    """The service that answers `path` in a cluster: the front door's target, or, when that
    is the gateway, the service the gateway forwards it to."""
    component = front_door_component(kind, path)
    return component_for(path) if component == GATEWAY else component


@pytest.mark.parametrize(("path", "component"), CALLS.items(), ids=list(CALLS))
def test_gateway_sends_each_call_to_the_service_that_serves_it(path: str, component: str) -> None:
    assert component_for(path) == component


@pytest.mark.parametrize("kind", FRONT_DOORS)
@pytest.mark.parametrize(("path", "component"), CALLS.items(), ids=list(CALLS))
def test_chart_front_door_delivers_each_call_to_the_service_that_serves_it(
    kind: str, path: str, component: str
) -> None:
    assert served_in_cluster_by(kind, path) == component


@pytest.mark.parametrize("kind", FRONT_DOORS)
def test_chart_front_door_bypasses_the_gateway_only_where_routes_agree(kind: str) -> None:
    for rule in front_door_rules(kind):
        if rule["component"] == GATEWAY:
            continue
        below = rule["path"].rstrip("/") + "/any/path/below"
        assert component_for(rule["path"]) == rule["component"]
        assert component_for(below) == rule["component"]


@pytest.mark.parametrize("kind", FRONT_DOORS)
def test_chart_front_door_sends_the_waiting_room_straight_to_the_queue(kind: str) -> None:
    assert front_door_component(kind, "/sales/spring/queue/ws") == "queue"
    assert front_door_component(kind, "/app/") == "queue"
    assert front_door_component(kind, "/events/spring/seats") == GATEWAY
    assert front_door_component(kind, "/") == GATEWAY


def test_prefix_matches_whole_segments_only() -> None:
    assert component_for("/authors") == "queue"
    assert component_for("/events-archive") == "queue"
    assert component_for("/events/spring/seats-left") == "event"


def test_every_routed_component_has_a_gateway_url_setting() -> None:
    settings = GatewaySettings()
    assert {route.component for route in ROUTES} == set(COMPONENTS)
    assert all(settings.upstream(name).startswith("http") for name in COMPONENTS)
