"""One load run from start to report: bring the platform up, open the sale, send the crowd,
let the platform settle, check integrity, write the report, take everything down."""

import asyncio
import os
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
from sqlalchemy.ext.asyncio import create_async_engine
from ticketing.common.redis_client import connect_redis
from ticketing.common.sale_config import Phase, SaleConfig, write_sale_config
from ticketing.common.settings import CommonSettings
from ticketing.common.tokens import Principal, issue_access_token

from loadtest.crowd.client import Call, SaleApi
from loadtest.crowd.processes import Crowd, run_crowd
from loadtest.crowd.recorder import Recorder
from loadtest.integrity import check_integrity, kafka_figures, wait_settled
from loadtest.platform import Platform, PlatformNotReady, start_platform
from loadtest.profile import CpuTimeline, cpu_between, served_latency, snapshot
from loadtest.report.machine import describe_machine
from loadtest.report.record import CpuSample, ProcessCpu, QueueSample, RouteLatency, RunRecord
from loadtest.report.write import Report, write_report
from loadtest.scenarios import Scenario

SAMPLE_SECONDS = 0.5
# After the crowd, the sweeper needs a few ticks to expire the last holds.
SETTLE_GRACE_SECONDS = 15
MAX_SEATS_PER_ROW = 50
# Two cores here: one crowd process per core keeps the crowd from being what limits the sale.
CROWD_PROCESSES = 2

Progress = Callable[[str], None]

NOTES = [
    "The sale's runtime configuration was written with common.sale_config.write_sale_config "
    "(the operator was not started for this run).",
    "Payment runs by itself over Kafka once seats are held: declines come from the payment "
    "service's simulated gateway at the scenario's payment_failure_rate; pay_too_late_rate "
    "needs a per-charge delay in the gateway and is not exercised.",
]


def venue_shape(seats: int) -> tuple[int, int]:
    """Rows and seats per row that give exactly `seats`."""
    per_row = next(d for d in range(min(seats, MAX_SEATS_PER_ROW), 0, -1) if seats % d == 0)
    return seats // per_row, per_row


async def _admin(http: httpx.AsyncClient, call: Call) -> None:
    reply = await http.request(call.method, call.url, json=call.json, headers=call.headers)
    if reply.status_code >= 300:
        raise PlatformNotReady(
            f"{call.method} {call.url} answered {reply.status_code}: {reply.text[:300]}"
        )


async def open_sale(
    platform: Platform, scenario: Scenario, settings: CommonSettings, http: httpx.AsyncClient
) -> None:
    """The venue, the event and its seats through the services; the sale's config into Redis."""
    api = SaleApi(platform.urls, scenario.event_id)
    admin = issue_access_token(
        settings, Principal("load-admin", "admin@load.example.org", ("admin",))
    )
    now = datetime.now(UTC)
    opens, closes = now - timedelta(minutes=1), now + timedelta(hours=1)
    venue = f"lt-{platform.run_id}"
    rows, per_row = venue_shape(scenario.seats)
    await _admin(http, api.put_venue(admin, venue, rows, per_row))
    await _admin(http, api.put_event(admin, venue, opens.isoformat(), closes.isoformat()))
    await _admin(http, api.load_inventory(admin))
    config = SaleConfig(
        event_id=scenario.event_id,
        tps=scenario.tps,
        max_active=scenario.max_active,
        session_ttl_seconds=scenario.session_ttl_seconds,
        hold_ttl_seconds=scenario.hold_ttl_seconds,
        opens_at=opens,
        closes_at=closes,
        pre_queue_minutes=0,
        phase=Phase.ON_SALE,
    )
    redis = connect_redis(platform.redis_settings)
    try:
        await write_sale_config(redis, platform.key_prefix, config)
    finally:
        await redis.aclose()


async def _sample(
    crowd: Crowd,
    recorder: Recorder,
    scenario: Scenario,
    progress: Progress,
    load_1min: list[float],
    timeline: CpuTimeline,
) -> None:
    """The line's size every half second (the queue service's figures once the crowd heard
    them, else the crowd's own count); a progress line and every process's CPU every two
    seconds."""
    last_line = 0.0
    while True:
        waiting, active = crowd.server("server_waiting"), crowd.server("server_active")
        recorder.queue.append(
            QueueSample(
                t=recorder.now(),
                waiting=crowd.total("waiting") if waiting is None else waiting,
                active=crowd.total("active") if active is None else active,
            )
        )
        if recorder.now() - last_line >= 2:
            last_line = recorder.now()
            load_1min.append(os.getloadavg()[0])
            await timeline.read(recorder.now())
            progress(
                f"{recorder.now():5.0f}s  arrived {crowd.total('arrived')}/{scenario.users}  "
                f"waiting {crowd.total('waiting')}  admitted {crowd.total('admitted')}  "
                f"bought {crowd.total('bought')}  errors {crowd.total('errors')}"
            )
        await asyncio.sleep(SAMPLE_SECONDS)


async def _settle(platform: Platform, scenario: Scenario) -> None:
    """Wait until no reservation of the sale is PENDING, or until the holds must have expired."""
    engine = create_async_engine(platform.database_url)
    try:
        await wait_settled(
            engine, scenario.event_id, scenario.hold_ttl_seconds + SETTLE_GRACE_SECONDS
        )
    finally:
        await engine.dispose()


async def _judge(
    platform: Platform,
    scenario: Scenario,
    recorder: Recorder,
    started_at: str,
    seconds: float,
    machine_note: str,
    load_1min: list[float],
    cpu: list[ProcessCpu],
    cpu_timeline: list[CpuSample],
    served: list[RouteLatency],
) -> RunRecord:
    engine = create_async_engine(platform.database_url)
    redis = connect_redis(platform.redis_settings)
    try:
        integrity = await check_integrity(
            engine, redis, platform.key_prefix, scenario.event_id, scenario.seats,
            recorder.reservations, settle_seconds=SETTLE_GRACE_SECONDS,
        )  # fmt: skip
    finally:
        await redis.aclose()
        await engine.dispose()
    return RunRecord(
        scenario=scenario.name,
        started_at=started_at,
        duration_seconds=seconds,
        tps=scenario.tps,
        max_active=scenario.max_active,
        seats=scenario.seats,
        arrived=recorder.arrived,
        outcomes=dict(recorder.outcomes),
        failures=dict(recorder.failures),
        requests=recorder.requests,
        errors=recorder.errors,
        admissions=sorted(recorder.admissions),
        arrivals=sorted(recorder.arrivals),
        queue=recorder.queue,
        latencies_ms=recorder.latencies_ms,
        integrity=integrity,
        kafka=await kafka_figures(platform.servers.kafka.bootstrap, platform.topic_prefix),
        notes=NOTES,
        machine=describe_machine(load_1min, machine_note),
        cpu=cpu,
        cpu_timeline=cpu_timeline,
        served=served,
    )


async def run_scenario(
    scenario: Scenario,
    results: Path,
    platform: Platform,
    progress: Progress,
    machine_note: str = "",
    crowd_processes: int = CROWD_PROCESSES,
) -> Report:
    """The whole run; the platform is stopped whatever happens. `machine_note` says what else
    ran on the machine, for the report; the crowd runs in `crowd_processes` processes."""
    settings = CommonSettings()
    try:
        progress(f"starting the platform under {platform.run_dir}")
        await start_platform(platform, scenario)
        progress(f"services ready: {', '.join(f'{n}:{p}' for n, p in platform.ports.items())}")
        async with httpx.AsyncClient(timeout=30) as http:
            await open_sale(platform, scenario, settings, http)
        progress(
            f"sale {scenario.event_id} open: {scenario.seats} seats, {scenario.users} people, {scenario.tps:g}/s"
        )
        recorder = Recorder()
        started_at = datetime.now(UTC).isoformat(timespec="seconds")
        load_1min: list[float] = []
        sampler: asyncio.Task[None] | None = None

        timeline: CpuTimeline | None = None

        def on_counts(latest: Crowd) -> None:
            nonlocal sampler, timeline
            if sampler is None:
                timeline = CpuTimeline(platform.process_groups(), latest.pids)
                sampler = asyncio.create_task(
                    _sample(latest, recorder, scenario, progress, load_1min, timeline)
                )

        before = await snapshot(platform.process_groups(), platform.ports)
        runner_before = time.process_time()
        try:
            crowd_cpu = await run_crowd(
                SaleApi(platform.urls, scenario.event_id),
                scenario,
                recorder,
                platform.run_id,
                crowd_processes,
                on_counts,
            )
        finally:
            if sampler is not None:
                sampler.cancel()
        seconds = recorder.now()
        runner = ProcessCpu(name="runner", seconds=round(time.process_time() - runner_before, 2))
        after = await snapshot(platform.process_groups(), platform.ports)
        cpu = sorted([*cpu_between(before, after), *crowd_cpu, runner], key=lambda p: -p.seconds)
        progress("crowd done; waiting for the platform to settle")
        await _settle(platform, scenario)
        record = await _judge(
            platform,
            scenario,
            recorder,
            started_at,
            seconds,
            machine_note,
            load_1min,
            cpu,
            timeline.samples if timeline is not None else [],
            served_latency(before, after),
        )
        return write_report(record, scenario, results)
    finally:
        await asyncio.to_thread(platform.stop)
