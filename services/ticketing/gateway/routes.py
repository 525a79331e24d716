"""Which service answers which path: the one routing table of the local gateway.

The chart's Ingress and HTTPRoute (`charts/ticketing/values.yaml`, `ingress.paths`) must route
the same way; `tests/web/test_gateway_routes.py` compares them.
"""

import re
from dataclasses import dataclass, field

COMPONENTS = ("user", "event", "seat", "queue", "reservation", "payment")


@dataclass(frozen=True)
class Route:
    """`path` matches itself and everything below it; a `*` segment matches any one segment."""

    path: str
    component: str
    pattern: re.Pattern[str] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        segments = [
            "[^/]+" if part == "*" else re.escape(part) for part in self.path.strip("/").split("/")
        ]
        body = "/".join(segments)
        # Whole segments only, as an Ingress `Prefix` path: /auth matches /auth/login, not /authors.
        regex = "^/(.*)$" if not body else f"^/{body}(/.*)?$"
        object.__setattr__(self, "pattern", re.compile(regex))

    def matches(self, path: str) -> bool:
        return self.pattern.match(path) is not None


# First match wins, so the sale's sub-resources come before /events (the event service's).
ROUTES: tuple[Route, ...] = (
    Route("/events/*/seats", "seat"),
    Route("/events/*/inventory", "seat"),
    Route("/events/*/reservations", "reservation"),
    Route("/events", "event"),
    Route("/venues", "seat"),
    Route("/users", "user"),
    Route("/auth", "user"),
    Route("/reservations", "reservation"),
    Route("/payments", "payment"),
    # The waiting room: /sales/... (HTTP and WebSocket) and the web page at /app/.
    Route("/", "queue"),
)


def component_for(path: str) -> str:
    """The component that serves `path`; `/` catches everything, so there is always one."""
    return next(route.component for route in ROUTES if route.matches(path))
