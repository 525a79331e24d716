"""Where the machine's CPU went during a sale: seconds per process, and per route and background
loop inside each service.

Every process of the run is read twice, when the crowd starts and when it is done: its process
group's user + system time from /proc (a server that forks counts with its children), and for
the HTTP services their `/metrics` (`ticketing_cpu_seconds_total{part=...}`, see
ticketing.common.cpu, and `process_cpu_seconds_total`). The difference is the sale's.
"""

import asyncio
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

import httpx
from prometheus_client.parser import text_string_to_metric_families

from loadtest.report.record import CpuSample, ProcessCpu, RouteLatency

_PROC = Path("/proc")
_TICKS = os.sysconf("SC_CLK_TCK")
# What a service's process spent outside any task: parsing and writing in the server's protocol
# callbacks, the event loop, the garbage collector.
UNATTRIBUTED = "(server and event loop, outside tasks)"


def cpu_seconds(
    pgids: Mapping[str, int], pids: Mapping[str, int] | None = None
) -> dict[str, float]:
    """User + system CPU seconds by name: of every live process in each process group of
    `pgids`, and of each single process of `pids` (one that leads no group of its own)."""
    by_group: dict[int, float] = {}
    by_pid: dict[int, float] = {}
    for entry in _PROC.iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        # The command name may hold spaces and parentheses: fields start after its last ')'.
        fields = stat[stat.rindex(")") + 2 :].split()
        pgrp, seconds = int(fields[2]), (int(fields[11]) + int(fields[12])) / _TICKS
        by_group[pgrp] = by_group.get(pgrp, 0.0) + seconds
        by_pid[int(entry.name)] = seconds
    return {
        **{name: by_group.get(pgid, 0.0) for name, pgid in pgids.items()},
        **{name: by_pid.get(pid, 0.0) for name, pid in (pids or {}).items()},
    }


@dataclass
class ServiceFigures:
    """A service's counters: CPU seconds by part (the whole process's under `UNATTRIBUTED`
    until `cpu_between` turns it into the remainder), and its request-duration histogram by
    route: cumulative counts per bucket bound."""

    parts: dict[str, float] = field(default_factory=dict)
    buckets: dict[str, dict[float, float]] = field(default_factory=dict)


async def service_figures(http: httpx.AsyncClient, port: int) -> ServiceFigures:
    reply = await http.get(f"http://127.0.0.1:{port}/metrics")
    figures = ServiceFigures()
    for family in text_string_to_metric_families(reply.text):
        for sample in family.samples:
            if sample.name == "ticketing_cpu_seconds_total":
                figures.parts[sample.labels["part"]] = sample.value
            elif sample.name == "process_cpu_seconds_total":
                figures.parts[UNATTRIBUTED] = sample.value
            elif sample.name == "ticketing_http_request_duration_seconds_bucket":
                route = f"{sample.labels['method']} {sample.labels['route']}"
                bound = float(sample.labels["le"])
                figures.buckets.setdefault(route, {})[bound] = sample.value
    return figures


@dataclass
class CpuSnapshot:
    processes: dict[str, float] = field(default_factory=dict)
    services: dict[str, ServiceFigures] = field(default_factory=dict)


async def snapshot(pgids: Mapping[str, int], ports: Mapping[str, int]) -> CpuSnapshot:
    """Every process's CPU now, and each HTTP service's parts (a service that does not answer
    has none)."""
    processes = await asyncio.to_thread(cpu_seconds, pgids)
    async with httpx.AsyncClient(timeout=10) as http:
        answers = await asyncio.gather(
            *(service_figures(http, port) for port in ports.values()), return_exceptions=True
        )
    services = {
        name: answer
        for name, answer in zip(ports, answers, strict=True)
        if not isinstance(answer, BaseException)
    }
    return CpuSnapshot(processes, services)


def _p95_bound(before: dict[float, float], after: dict[float, float]) -> tuple[int, float] | None:
    """Requests between two histogram readings, and the bucket bound under which 95 % of them
    fell (seconds; inf when over the last bound)."""
    counts = {bound: after[bound] - before.get(bound, 0.0) for bound in sorted(after)}
    total = counts.get(float("inf"), 0.0)
    if total <= 0:
        return None
    bound = next(b for b, count in counts.items() if count >= 0.95 * total)
    return round(total), bound


def served_latency(before: CpuSnapshot, after: CpuSnapshot) -> list[RouteLatency]:
    """Each service route's requests while the crowd ran and its p95 as the service timed it
    (from receiving the request to the end of the response), busiest first."""
    routes = []
    for name, figures in after.services.items():
        old = before.services.get(name, ServiceFigures())
        for route, buckets in figures.buckets.items():
            if (
                route.endswith(" /metrics")
                or (seen := _p95_bound(old.buckets.get(route, {}), buckets)) is None
            ):
                continue
            requests, bound = seen
            routes.append(
                RouteLatency(
                    service=name,
                    route=route,
                    requests=requests,
                    p95_under_ms=bound * 1000 if bound != float("inf") else None,
                )
            )
    return sorted(routes, key=lambda r: -r.requests)


@dataclass
class CpuTimeline:
    """Cores each process used in each interval between two readings: the rush of a sale is
    a few seconds, and its averages over the whole run hide which process it waited on."""

    pgids: Mapping[str, int]
    pids: Mapping[str, int]
    samples: list[CpuSample] = field(default_factory=list)
    _last: tuple[float, dict[str, float]] | None = None

    async def read(self, t: float) -> None:
        now = await asyncio.to_thread(cpu_seconds, self.pgids, self.pids)
        if self._last is not None and t > self._last[0]:
            then, before = self._last
            self.samples.append(
                CpuSample(
                    t=round(t, 2),
                    cores={
                        name: round((seconds - before.get(name, seconds)) / (t - then), 3)
                        for name, seconds in now.items()
                    },
                )
            )
        self._last = (t, now)


def cpu_between(before: CpuSnapshot, after: CpuSnapshot) -> list[ProcessCpu]:
    """What each process spent between two snapshots, busiest first; a service's parts with
    the process's time outside its tasks as one more part."""
    spent = []
    for name, seconds in after.processes.items():
        old_parts = before.services.get(name, ServiceFigures()).parts
        new_parts = after.services.get(name, ServiceFigures()).parts
        parts = {
            part: value - old_parts.get(part, 0.0)
            for part, value in new_parts.items()
            if part != UNATTRIBUTED
        }
        if UNATTRIBUTED in new_parts:
            whole = new_parts[UNATTRIBUTED] - old_parts.get(UNATTRIBUTED, 0.0)
            parts[UNATTRIBUTED] = max(whole - sum(parts.values()), 0.0)
        spent.append(
            ProcessCpu(
                name=name,
                seconds=round(seconds - before.processes.get(name, 0.0), 2),
                parts={p: round(s, 3) for p, s in parts.items() if s >= 0.0005},
            )
        )
    return sorted(spent, key=lambda process: -process.seconds)
