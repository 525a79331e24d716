"""Kubernetes-style conditions whose lastTransitionTime moves only when their status does."""

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any


@dataclass(frozen=True)
class Condition:
    type: str
    ok: bool
    reason: str
    message: str


def render(
    conditions: Sequence[Condition], previous: Sequence[Mapping[str, Any]], now: datetime
) -> list[dict[str, str]]:
    before = {c.get("type"): c for c in previous}
    rendered = []
    for condition in conditions:
        status = "True" if condition.ok else "False"
        old = before.get(condition.type) or {}
        since = old.get("lastTransitionTime") if old.get("status") == status else None
        rendered.append(
            {
                "type": condition.type,
                "status": status,
                "reason": condition.reason,
                "message": condition.message,
                "lastTransitionTime": since or timestamp(now),
            }
        )
    return rendered


def timestamp(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")
