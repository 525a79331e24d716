"""The operator's kopf handlers: settings at startup, the sale in the services on each spec
change, a timer that keeps phase, configuration, retry workers and status current, and a
finalizer that closes the sale.

Handlers stay small: the decisions live in `reconcile`, `phase`, `adaptive` and `scaling`.
"""

import logging
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

import httpx
import kopf
from kubernetes import client
from ticketing.common.errors import DomainError
from ticketing.common.redis_client import connect_redis
from ticketing.common.sale_config import Phase

from ticketing_operator.kube import Deployments, ScaleFailed, connection_info, load_configuration
from ticketing_operator.reconcile import Clients, reconcile
from ticketing_operator.runtime import CLOSED_MESSAGE, apply_config, remove_config, sale_config
from ticketing_operator.services import SaleServices, ServicesRefused, ensure_sale
from ticketing_operator.settings import OperatorSettings, get_settings
from ticketing_operator.spec import (
    GROUP,
    PLURAL,
    VERSION,
    InvalidSpec,
    TicketEventSpec,
    event_id,
    parse_spec,
)

# Status, phase and runtime configuration are at most this many seconds behind.
TICK_SECONDS = 2.0
RETRY_SECONDS = 5.0
SERVICES_RETRY_SECONDS = 15.0
FINALIZER = f"{GROUP}/operator"


@kopf.on.startup()
async def configure(settings: kopf.OperatorSettings, memo: kopf.Memo, **_: Any) -> None:
    own: OperatorSettings = memo.get("operator_settings") or get_settings()
    memo.operator_settings = own
    # kopf's bookkeeping goes to annotations, so status holds only what people read.
    settings.persistence.finalizer = FINALIZER
    settings.persistence.progress_storage = kopf.AnnotationsProgressStorage(prefix=GROUP)
    settings.persistence.diffbase_storage = kopf.AnnotationsDiffBaseStorage(prefix=GROUP)
    # Kubernetes Events only for what people act on (phase changes, failures), not every log.
    settings.posting.level = logging.WARNING
    # Replicas must not fight: without --standalone, refuse to run until the peering exists.
    settings.peering.name = own.operator_peering
    settings.peering.standalone = settings.peering.standalone or own.operator_standalone
    settings.peering.mandatory = not settings.peering.standalone
    memo.kube_configuration = load_configuration(own.operator_kubeconfig)
    memo.kube_api = client.ApiClient(memo.kube_configuration)
    memo.clients = Clients(
        settings=own,
        redis=connect_redis(own),
        deployments=Deployments(memo.kube_api),
    )
    memo.services = _services(own)


def _services(own: OperatorSettings) -> SaleServices | None:
    if not own.services_configured:
        return None
    timeout = httpx.Timeout(own.operator_http_timeout_seconds)
    return SaleServices(
        events=httpx.AsyncClient(base_url=own.operator_events_url, timeout=timeout),
        seats=httpx.AsyncClient(base_url=own.operator_seats_url, timeout=timeout),
    )


@kopf.on.cleanup()
async def close_clients(memo: kopf.Memo, **_: Any) -> None:
    clients: Clients = memo.clients
    await clients.redis.aclose()
    services: SaleServices | None = memo.services
    if services is not None:
        await services.events.aclose()
        await services.seats.aclose()
    memo.kube_api.close()


@kopf.on.login()
def login(memo: kopf.Memo, **_: Any) -> kopf.ConnectionInfo:
    return connection_info(memo.kube_configuration)


@kopf.on.resume(GROUP, VERSION, PLURAL)
@kopf.on.create(GROUP, VERSION, PLURAL)
@kopf.on.update(GROUP, VERSION, PLURAL, field="spec")
async def ensure_sale_in_services(
    spec: kopf.Spec,
    name: str,
    meta: kopf.Meta,
    memo: kopf.Memo,
    patch: kopf.Patch,
    **_: Any,
) -> None:
    """Create or update the sale in the seat and event services (idempotent)."""
    services: SaleServices | None = memo.services
    generation = meta.get("generation")
    if services is None:
        patch.status["services"] = _services_status(
            False, "NotConfigured", "no event/seat service URLs are set: skipped", generation
        )
        return
    sale = _parse(spec)
    try:
        await ensure_sale(services, memo.operator_settings, event_id(sale, name), sale)
    except DomainError as exc:
        reason = "Refused" if isinstance(exc, ServicesRefused) else "Unavailable"
        patch.status["services"] = _services_status(False, reason, exc.reason, generation)
        if exc.retriable:
            raise kopf.TemporaryError(exc.reason, delay=SERVICES_RETRY_SECONDS) from exc
        raise kopf.PermanentError(exc.reason) from exc
    patch.status["services"] = _services_status(
        True, "Synced", "venue, event and seat inventory exist", generation
    )


def _services_status(ok: bool, reason: str, message: str, generation: object) -> dict[str, Any]:
    return {"synced": ok, "reason": reason, "message": message, "generation": generation}


@kopf.timer(GROUP, VERSION, PLURAL, interval=TICK_SECONDS)
async def keep_sale_current(
    body: kopf.Body,
    spec: kopf.Spec,
    status: kopf.Status,
    meta: kopf.Meta,
    name: str,
    namespace: str | None,
    memo: kopf.Memo,
    patch: kopf.Patch,
    **_: Any,
) -> None:
    """Phase, runtime configuration, retry workers and status, every tick."""
    if meta.get("deletionTimestamp"):
        return  # the finalizer owns the sale's last configuration
    try:
        outcome = await reconcile(
            memo.clients,
            _parse(spec),
            name=name,
            namespace=namespace or "",  # never None: the CRD is namespaced
            generation=int(meta["generation"]),
            status=status,
            now=datetime.now(UTC),
        )
    except ScaleFailed as exc:
        if exc.retriable:
            raise kopf.TemporaryError(str(exc), delay=RETRY_SECONDS) from exc
        raise kopf.PermanentError(str(exc)) from exc
    except DomainError as exc:
        raise kopf.TemporaryError(exc.reason, delay=RETRY_SECONDS) from exc
    for key, value in outcome.status.items():
        if status.get(key) != value:
            patch.status[key] = value
    before = status.get("phase")
    if before != outcome.phase:
        kopf.event(
            body,
            type="Normal",
            reason="PhaseChanged",
            message=f"{before or 'New'} -> {outcome.phase}",
        )
    if outcome.workers_scaled:
        kopf.event(body, type="Normal", reason="RetryWorkersScaled", message=outcome.workers_scaled)


@kopf.on.delete(GROUP, VERSION, PLURAL)
async def close_sale(
    spec: kopf.Spec,
    status: kopf.Status,
    name: str,
    retry: int,
    memo: kopf.Memo,
    **_: Any,
) -> None:
    """Show waiters the sale closed for a grace period, then remove its configuration."""
    clients: Clients = memo.clients
    sale = _parse(spec)
    sale_id = event_id(sale, name)
    prefix = clients.settings.redis_key_prefix
    try:
        if retry == 0:
            tps = (status.get("admission") or {}).get("tps") or sale.admission.tps
            closed = sale_config(sale_id, sale, Phase.CLOSED, tps, message=CLOSED_MESSAGE)
            await apply_config(clients.redis, prefix, closed)
            raise kopf.TemporaryError(
                "told the waiting room the sale closed; removing its configuration next",
                delay=clients.settings.operator_close_grace_seconds,
            )
        await remove_config(clients.redis, prefix, sale_id)
    except DomainError as exc:
        raise kopf.TemporaryError(exc.reason, delay=RETRY_SECONDS) from exc


def _parse(spec: Mapping[str, Any]) -> TicketEventSpec:
    try:
        return parse_spec(spec)
    except InvalidSpec as exc:
        raise kopf.PermanentError(f"spec does not match the CRD: {exc}") from exc
