"""One reconcile of a sale: measure, decide phase, admission rate and retry workers, write the
runtime configuration, and say it all in the resource's status.

Everything it decides from is in Redis, the Deployment or the previous status, so a restarted
operator (or another replica taking over) reaches the same decisions and changes nothing.
"""

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from ticketing.common.redis_client import RedisClient
from ticketing.common.redis_keys import SaleKeys
from ticketing.common.sale_config import Phase

from ticketing_operator.adaptive import AdmissionPlan, plan_admission
from ticketing_operator.conditions import Condition, render, timestamp
from ticketing_operator.figures import read_queue, read_retry_backlog, read_seats
from ticketing_operator.kube import Deployments
from ticketing_operator.phase import next_change, sale_phase
from ticketing_operator.runtime import apply_config, sale_config
from ticketing_operator.scaling import plan_workers
from ticketing_operator.settings import OperatorSettings
from ticketing_operator.spec import RetryWorkers, TicketEventSpec, event_id

# Phases the clock still moves on from by itself.
MOVING = (Phase.SCHEDULED, Phase.PRE_QUEUE, Phase.ON_SALE)
SERVICES_FINE = ("Synced", "NotConfigured")


@dataclass(frozen=True)
class Clients:
    settings: OperatorSettings
    redis: RedisClient
    deployments: Deployments


@dataclass(frozen=True)
class Outcome:
    phase: Phase
    status: dict[str, Any]
    # "3 -> 4: <reason>" when this reconcile scaled the retry workers.
    workers_scaled: str | None = None


async def reconcile(
    clients: Clients,
    spec: TicketEventSpec,
    *,
    name: str,
    namespace: str,
    generation: int,
    status: Mapping[str, Any],
    now: datetime,
) -> Outcome:
    prefix = clients.settings.redis_key_prefix
    sale_id = event_id(spec, name)
    keys = SaleKeys(prefix, sale_id)
    queue = await read_queue(clients.redis, keys)
    seats = await read_seats(clients.redis, keys)
    backlog = await read_retry_backlog(clients.redis, prefix)
    phase = sale_phase(spec.sale, seats, now)

    # A new generation of the spec restarts adaptive admission from spec.admission.tps.
    admission_before = status.get("admission") or {}
    same_spec = status.get("observedGeneration") == generation
    admission = plan_admission(
        spec.admission,
        spec.retry_workers,
        admission_before.get("tps") if same_spec else None,
        phase,
        queue,
        backlog,
    )
    await apply_config(clients.redis, prefix, sale_config(sale_id, spec, phase, admission.tps))
    workers, scaled = await _retry_workers(
        clients, namespace, spec.retry_workers, backlog, status.get("retryWorkers") or {}, now
    )
    services = status.get("services") or {}
    return Outcome(
        phase=phase,
        status={
            "eventId": sale_id,
            "phase": str(phase),
            "observedGeneration": generation,
            "admission": _admission_status(spec, admission),
            "queue": {"waiting": queue.waiting, "active": queue.active},
            "seats": {
                "total": seats.total,
                "free": seats.free,
                "held": seats.held,
                "sold": seats.sold,
                "remaining": seats.free + seats.held,
            },
            "retryWorkers": workers,
            "conditions": render(
                _conditions(spec, phase, services, workers),
                status.get("conditions") or [],
                now,
            ),
        },
        workers_scaled=scaled,
    )


def _admission_status(spec: TicketEventSpec, plan: AdmissionPlan) -> dict[str, Any]:
    return {"tps": plan.tps, "adaptive": spec.admission.adaptive.enabled, "reason": plan.reason}


async def _retry_workers(
    clients: Clients,
    namespace: str,
    policy: RetryWorkers,
    backlog: int,
    before: Mapping[str, Any],
    now: datetime,
) -> tuple[dict[str, Any], str | None]:
    """The retry workers' status, and what this reconcile scaled, if anything."""
    name = policy.deployment or clients.settings.operator_retry_deployment
    current = await clients.deployments.replicas(namespace, name)
    if current is None:
        return {
            "deployment": name,
            "replicas": None,
            "backlog": backlog,
            "lowSince": None,
            "reason": f"deployment {name} not found in {namespace}",
        }, None
    low_since = before.get("lowSince") if before.get("deployment") == name else None
    plan = plan_workers(
        policy,
        backlog,
        current,
        datetime.fromisoformat(low_since) if low_since else None,
        now,
    )
    scaled = None
    if plan.replicas != current:
        await clients.deployments.scale(namespace, name, plan.replicas)
        scaled = f"{current} -> {plan.replicas}: {plan.reason}"
    return {
        "deployment": name,
        "replicas": plan.replicas,
        "backlog": backlog,
        "lowSince": timestamp(plan.low_since) if plan.low_since else None,
        "reason": plan.reason,
    }, scaled


def _conditions(
    spec: TicketEventSpec,
    phase: Phase,
    services: Mapping[str, Any],
    workers: Mapping[str, Any],
) -> list[Condition]:
    services_reason = str(services.get("reason") or "Pending")
    services_message = str(services.get("message") or "the sale is not in the services yet")
    services_fine = services_reason in SERVICES_FINE
    workers_missing = workers.get("replicas") is None
    change = next_change(spec.sale, phase)
    if phase in MOVING and change is not None:
        progress = f"the sale is {phase}; the clock moves it on at {timestamp(change)}"
    else:
        progress = f"the sale is {phase} and stays so"
    if not services_fine:
        degraded = Condition("Degraded", True, services_reason, services_message)
    elif workers_missing:
        degraded = Condition("Degraded", True, "RetryWorkersNotFound", str(workers["reason"]))
    else:
        degraded = Condition("Degraded", False, "AsExpected", "every part of the sale responds")
    return [
        Condition(
            "Ready",
            services_fine,
            "SaleConfigured" if services_fine else services_reason,
            "the runtime configuration is in Redis"
            + ("" if services_fine else "; " + services_message),
        ),
        Condition("ServicesSynced", services_reason == "Synced", services_reason, services_message),
        Condition("Progressing", phase in MOVING, str(phase), progress),
        degraded,
    ]
