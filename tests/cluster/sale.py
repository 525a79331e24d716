"""A sale through the cluster: the operator in the cluster opens it from a TicketEvent, the
smoke scenario's crowd comes in through a port-forward to the gateway, and the in-cluster
MariaDB and Redis are audited afterwards."""

import asyncio
import base64
import os
import time
import uuid
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import redis.asyncio as aioredis
from pydantic import SecretStr
from sqlalchemy import make_url
from sqlalchemy.ext.asyncio import create_async_engine
from ticketing.common.settings import CommonSettings
from ticketing_cluster.forward import port_forward

from loadtest.crowd.client import SaleApi, ServiceUrls
from loadtest.crowd.processes import run_crowd
from loadtest.crowd.recorder import Recorder
from loadtest.integrity import check_integrity, wait_settled
from loadtest.report.machine import describe_machine
from loadtest.report.record import Integrity, RunRecord
from loadtest.sale import SETTLE_GRACE_SECONDS, venue_shape
from loadtest.scenarios import scenario as named_scenario
from tests.cluster.conftest import Kind

NOTES = [
    "Run on the kind cluster of `./dev cluster up` (one node, every image built offline on this "
    "machine): the sale was opened by the operator running in the cluster from a TicketEvent, "
    "the crowd reached the gateway through `kubectl port-forward`, and the integrity figures "
    "were read from the in-cluster MariaDB and Redis through port-forwards.",
    "Payment declines are the chart's (the simulated gateway's default failure rate), not the "
    "scenario's payment_failure_rate.",
    "Kafka's retry and dead-letter counts were not read: the in-cluster broker advertises only "
    "its in-cluster name, which a client outside the cluster cannot reach; the 0 / 0 below is "
    "not a measurement.",
]


def secret_value(kind_cluster: Kind, key: str) -> str:
    data = kind_cluster.get("secret", kind_cluster.release)["data"]
    return base64.b64decode(data[key]).decode()


def open_sale(
    kind_cluster: Kind, event_id: str, seats: int, extra: dict[str, Any] | None = None
) -> None:
    """Applies the smoke scenario's sale (with `extra` spec fields) and waits for it to open."""
    smoke = named_scenario("smoke")
    rows, per_row = venue_shape(seats)
    now = datetime.now(UTC)
    opens = (now - timedelta(minutes=1)).isoformat(timespec="seconds").replace("+00:00", "Z")
    closes = (now + timedelta(hours=1)).isoformat(timespec="seconds").replace("+00:00", "Z")
    kind_cluster.apply_sale(
        event_id,
        {
            "title": "Cluster smoke sale",
            "venue": {"rows": rows, "seatsPerRow": per_row, "priceCents": 1000},
            "sale": {"opensAt": opens, "closesAt": closes, "preQueueMinutes": 0},
            "admission": {
                "tps": smoke.tps,
                "maxActive": smoke.max_active,
                "sessionTTLSeconds": smoke.session_ttl_seconds,
            },
            "holds": {"ttlSeconds": smoke.hold_ttl_seconds},
            **(extra or {}),
        },
    )
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        status = kind_cluster.get("te", event_id).get("status", {})
        if status.get("phase") == "OnSale":
            return
        time.sleep(1)
    raise AssertionError(f"the operator did not open {event_id} within 120 s: {status}")


@contextmanager
def crowd_environment(variables: dict[str, str]) -> Iterator[None]:
    saved = {name: os.environ.get(name) for name in variables}
    os.environ.update(variables)
    try:
        yield
    finally:
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


@dataclass
class SaleResult:
    integrity: Integrity
    record: RunRecord
    pending: int


async def play_smoke_sale(
    kind_cluster: Kind,
    during: Callable[[], Awaitable[None]] | None = None,
    extra: dict[str, Any] | None = None,
) -> SaleResult:
    """The smoke scenario's crowd against a sale the operator opens; `during` runs beside it."""
    smoke = named_scenario("smoke")
    event_id = f"cluster-smoke-{uuid.uuid4().hex[:6]}"
    open_sale(kind_cluster, event_id, smoke.seats, extra)
    # The crowd's processes mint login tokens with the cluster's key, from their environment.
    login_keys = secret_value(kind_cluster, "login-signing-keys")
    settings = CommonSettings(login_signing_keys=SecretStr(login_keys))
    database_url = secret_value(kind_cluster, "database-url")
    context, namespace = kind_cluster.target.context, kind_cluster.namespace
    recorder = Recorder()
    started_at = datetime.now(UTC).isoformat(timespec="seconds")
    try:
        with (
            port_forward(context, namespace, f"{kind_cluster.release}-gateway", 80) as gateway,
            port_forward(context, namespace, f"{kind_cluster.release}-mariadb", 3306) as mariadb,
            port_forward(context, namespace, f"{kind_cluster.release}-redis", 6379) as redis_port,
        ):
            origin = f"http://127.0.0.1:{gateway}"
            urls = ServiceUrls(
                user=origin, queue=origin, event=origin, seat=origin, reservation=origin
            )
            crowd = run_crowd(
                SaleApi(urls, event_id), smoke, recorder, uuid.uuid4().hex[:8],
                processes=1, on_counts=lambda _: None,
            )  # fmt: skip
            with crowd_environment({"TICKETING_LOGIN_SIGNING_KEYS": login_keys}):
                await asyncio.gather(crowd, *([during()] if during else []))
            seconds = recorder.now()
            load_1min = [os.getloadavg()[0]]
            local_database = (
                make_url(database_url)
                .set(host="127.0.0.1", port=mariadb)
                .render_as_string(hide_password=False)
            )
            engine = create_async_engine(local_database)
            redis = aioredis.Redis.from_url(f"redis://127.0.0.1:{redis_port}")
            try:
                pending = await wait_settled(
                    engine, event_id, smoke.hold_ttl_seconds + SETTLE_GRACE_SECONDS
                )
                integrity = await check_integrity(
                    engine, redis, settings.redis_key_prefix, event_id, smoke.seats,
                    recorder.reservations, settle_seconds=SETTLE_GRACE_SECONDS,
                )  # fmt: skip
            finally:
                await redis.aclose()
                await engine.dispose()
    finally:
        kind_cluster.kubectl("delete", "te", event_id, "--wait=true", "--timeout=120s")
    record = RunRecord(
        scenario="cluster-smoke",
        started_at=started_at,
        duration_seconds=seconds,
        tps=smoke.tps,
        max_active=smoke.max_active,
        seats=smoke.seats,
        arrived=recorder.arrived,
        outcomes=dict(recorder.outcomes),
        failures=dict(recorder.failures),
        requests=recorder.requests,
        errors=recorder.errors,
        admissions=sorted(recorder.admissions),
        queue=recorder.queue,
        latencies_ms=recorder.latencies_ms,
        integrity=integrity,
        notes=NOTES,
        machine=describe_machine(load_1min, "kind cluster on this machine"),
    )
    return SaleResult(integrity, record, int(pending or 0))
