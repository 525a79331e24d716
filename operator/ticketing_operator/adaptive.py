"""Adaptive admission: nudge TPS within [minTps, maxTps] from what the sale measures.

One rule per tick, the first that applies, so the reason in status is always one sentence:
1. the retry backlog exceeds what the maximum of retry workers drains -> halve (downstream hurts);
2. active sessions at 90% of the cap or more -> slow down by a fifth (the cap would refuse them);
3. people wait while active sessions use under half the cap -> speed up by a fifth (admitted
   people did not show up or left early: their places go to the next in line);
4. otherwise hold steady.
"""

from dataclasses import dataclass

from ticketing.common.sale_config import Phase

from ticketing_operator.figures import QueueFigures
from ticketing_operator.spec import Admission, RetryWorkers

BUSY_SHARE = 0.9
IDLE_SHARE = 0.5
SLOWER = 0.8
FASTER = 1.2
BACK_OFF = 0.5


@dataclass(frozen=True)
class AdmissionPlan:
    tps: float
    reason: str


def plan_admission(
    admission: Admission,
    retry: RetryWorkers,
    current_tps: float | None,
    phase: Phase,
    queue: QueueFigures,
    backlog: int,
) -> AdmissionPlan:
    """`current_tps` is what the operator last set for this generation of the spec (None after
    the spec changed: start again from spec.admission.tps)."""
    adaptive = admission.adaptive
    if not adaptive.enabled or adaptive.min_tps is None or adaptive.max_tps is None:
        return AdmissionPlan(admission.tps, "fixed by spec.admission.tps")
    low, high = adaptive.min_tps, adaptive.max_tps
    tps = min(max(current_tps if current_tps is not None else admission.tps, low), high)
    if phase is not Phase.ON_SALE:
        return AdmissionPlan(tps, f"adaptive: holds while the sale is {phase}")
    share = queue.active / admission.max_active
    capacity = retry.backlog_per_replica * retry.max_replicas
    if backlog > capacity:
        factor, why = (
            BACK_OFF,
            f"retry backlog {backlog} exceeds what {retry.max_replicas} workers drain",
        )
    elif share >= BUSY_SHARE:
        factor, why = SLOWER, f"active sessions at {share:.0%} of the cap"
    elif queue.waiting > 0 and share < IDLE_SHARE:
        factor, why = (
            FASTER,
            f"active sessions at {share:.0%} of the cap with {queue.waiting} waiting: "
            "filling no-shows",
        )
    else:
        return AdmissionPlan(tps, f"adaptive: steady, active sessions at {share:.0%} of the cap")
    new = round(min(max(tps * factor, low), high), 2)
    return AdmissionPlan(new, f"adaptive: {why}; {tps:g} -> {new:g} TPS")
