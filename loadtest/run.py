"""One load run from start to report: bring the platform up, open the sale, send the crowd,
let the platform settle, check integrity, write the report, take everything down."""

import asyncio
import os
import time
from datetime import UTC, datetime
from pathlib import Path

from loadtest.crowd.client import SaleApi
from loadtest.crowd.processes import Crowd, run_crowd
from loadtest.crowd.recorder import Recorder
from loadtest.integrity import kafka_figures
from loadtest.platform import Platform
from loadtest.profile import CpuTimeline, cpu_between, served_latency, snapshot
from loadtest.report.machine import describe_machine
from loadtest.report.record import (
    CpuSample,
    Integrity,
    ProcessCpu,
    QueueSample,
    RouteLatency,
    RunRecord,
)
from loadtest.report.write import Report, write_report
from loadtest.sale import Progress, audit, sale_on
from loadtest.scenarios import Scenario

SAMPLE_SECONDS = 0.5
# Two cores here: one crowd process per core keeps the crowd from being what limits the sale.
CROWD_PROCESSES = 2

NOTES = [
    "The sale's runtime configuration was written with common.sale_config.write_sale_config "
    "(the operator was not started for this run).",
    "Payment runs by itself over Kafka once seats are held: declines come from the payment "
    "service's simulated gateway at the scenario's payment_failure_rate; pay_too_late_rate "
    "needs a per-charge delay in the gateway and is not exercised.",
]


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


async def _record(
    platform: Platform,
    scenario: Scenario,
    recorder: Recorder,
    integrity: Integrity,
    started_at: str,
    seconds: float,
    machine_note: str,
    load_1min: list[float],
    cpu: list[ProcessCpu],
    cpu_timeline: list[CpuSample],
    served: list[RouteLatency],
) -> RunRecord:
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
    async with sale_on(platform, scenario, progress):
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
        integrity = await audit(platform, scenario, recorder.reservations)
        record = await _record(
            platform,
            scenario,
            recorder,
            integrity,
            started_at,
            seconds,
            machine_note,
            load_1min,
            cpu,
            timeline.samples if timeline is not None else [],
            served_latency(before, after),
        )
        return write_report(record, scenario, results)
