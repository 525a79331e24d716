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

from loadtest.report.record import ProcessCpu

_PROC = Path("/proc")
_TICKS = os.sysconf("SC_CLK_TCK")
# What a service's process spent outside any task: parsing and writing in the server's protocol
# callbacks, the event loop, the garbage collector.
UNATTRIBUTED = "(server and event loop, outside tasks)"


def group_cpu_seconds(pgids: Mapping[str, int]) -> dict[str, float]:
    """User + system CPU seconds of every live process in each named process group."""
    by_group: dict[int, float] = {}
    for entry in _PROC.iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        # The command name may hold spaces and parentheses: fields start after its last ')'.
        fields = stat[stat.rindex(")") + 2 :].split()
        pgrp, utime, stime = int(fields[2]), int(fields[11]), int(fields[12])
        by_group[pgrp] = by_group.get(pgrp, 0.0) + (utime + stime) / _TICKS
    return {name: by_group.get(pgid, 0.0) for name, pgid in pgids.items()}


async def service_parts(http: httpx.AsyncClient, port: int) -> dict[str, float]:
    """A service's CPU seconds by part, and the whole process's under `UNATTRIBUTED` until
    `parts_since` turns it into the remainder."""
    reply = await http.get(f"http://127.0.0.1:{port}/metrics")
    parts: dict[str, float] = {}
    for family in text_string_to_metric_families(reply.text):
        for sample in family.samples:
            if sample.name == "ticketing_cpu_seconds_total":
                parts[sample.labels["part"]] = sample.value
            elif sample.name == "process_cpu_seconds_total":
                parts[UNATTRIBUTED] = sample.value
    return parts


@dataclass
class CpuSnapshot:
    processes: dict[str, float] = field(default_factory=dict)
    parts: dict[str, dict[str, float]] = field(default_factory=dict)


async def snapshot(pgids: Mapping[str, int], ports: Mapping[str, int]) -> CpuSnapshot:
    """Every process's CPU now, and each HTTP service's parts (a service that does not answer
    has none)."""
    processes = await asyncio.to_thread(group_cpu_seconds, pgids)
    async with httpx.AsyncClient(timeout=10) as http:
        answers = await asyncio.gather(
            *(service_parts(http, port) for port in ports.values()), return_exceptions=True
        )
    parts = {
        name: answer
        for name, answer in zip(ports, answers, strict=True)
        if not isinstance(answer, BaseException)
    }
    return CpuSnapshot(processes, parts)


def cpu_between(before: CpuSnapshot, after: CpuSnapshot) -> list[ProcessCpu]:
    """What each process spent between two snapshots, busiest first; a service's parts with
    the process's time outside its tasks as one more part."""
    spent = []
    for name, seconds in after.processes.items():
        old_parts, new_parts = before.parts.get(name, {}), after.parts.get(name, {})
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
