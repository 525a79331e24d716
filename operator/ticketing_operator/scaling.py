"""How many retry workers the backlog calls for: up at once, down only after a cool-down."""

import math
from dataclasses import dataclass
from datetime import datetime, timedelta

from ticketing_operator.spec import RetryWorkers


@dataclass(frozen=True)
class WorkerPlan:
    replicas: int
    # Since when the backlog has wanted fewer workers than run; None when it does not.
    low_since: datetime | None
    reason: str


def plan_workers(
    policy: RetryWorkers, backlog: int, current: int, low_since: datetime | None, now: datetime
) -> WorkerPlan:
    wanted = min(
        max(math.ceil(backlog / policy.backlog_per_replica), policy.min_replicas),
        policy.max_replicas,
    )
    if wanted >= current:
        verb = "scaled up" if wanted > current else "steady"
        return WorkerPlan(wanted, None, f"{verb}: backlog {backlog} wants {wanted} worker(s)")
    since = low_since or now
    cooldown = timedelta(seconds=policy.cooldown_seconds)
    if now - since >= cooldown:
        return WorkerPlan(
            wanted,
            None,
            f"scaled down: backlog {backlog} stayed low for {policy.cooldown_seconds}s",
        )
    return WorkerPlan(
        current,
        since,
        f"cooling down: backlog {backlog} wants {wanted} worker(s) after "
        f"{policy.cooldown_seconds}s of low backlog",
    )
