"""The TicketEvent resource as typed values: its API coordinates and its spec.

The API server has already validated and defaulted the spec (manifests/crd-ticketevent.yaml),
so these models carry no defaults of their own: a missing field is a bug, not a choice.
"""

from collections.abc import Mapping
from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError
from pydantic.alias_generators import to_camel

GROUP = "ticketing.dev"
VERSION = "v1alpha1"
PLURAL = "ticketevents"


class InvalidSpec(ValueError):
    """The spec does not parse: only possible if the CRD and these models disagree."""


class _Camel(BaseModel):
    model_config = ConfigDict(alias_generator=to_camel, frozen=True, extra="ignore")


class Venue(_Camel):
    rows: int
    seats_per_row: int
    price_cents: int
    currency: str

    @property
    def seats(self) -> int:
        return self.rows * self.seats_per_row


class SaleWindow(_Camel):
    opens_at: datetime
    closes_at: datetime
    pre_queue_minutes: int


class Adaptive(_Camel):
    enabled: bool
    min_tps: float | None = None
    max_tps: float | None = None


class Admission(_Camel):
    tps: float
    max_active: int
    session_ttl_seconds: int = Field(alias="sessionTTLSeconds")
    adaptive: Adaptive


class Holds(_Camel):
    ttl_seconds: int
    # The CRD gives no default, so that its rule against the venue's size refuses only a limit
    # someone wrote; the sale's runtime config then has DEFAULT_MAX_SEATS_PER_BUYER.
    max_seats_per_buyer: int | None = None


class RetryWorkers(_Camel):
    deployment: str | None = None
    min_replicas: int
    max_replicas: int
    backlog_per_replica: int
    cooldown_seconds: int


class Controls(_Camel):
    paused: bool
    maintenance: bool
    message: str


class TicketEventSpec(_Camel):
    event_id: str | None = None
    title: str
    venue: Venue
    sale: SaleWindow
    admission: Admission
    holds: Holds
    retry_workers: RetryWorkers
    controls: Controls


def parse_spec(spec: Mapping[str, Any]) -> TicketEventSpec:
    try:
        return TicketEventSpec.model_validate(dict(spec))
    except ValidationError as exc:
        raise InvalidSpec(str(exc)) from exc


def event_id(spec: TicketEventSpec, name: str) -> str:
    """The sale's id everywhere outside Kubernetes: spec.eventId, else the resource's name."""
    return spec.event_id or name
