"""The crowd spread over processes, so that it is not what limits the sale it measures.

Each crowd process runs the buyers of one shard of the crowd (person i goes to process i mod N)
on its own event loop and HTTP connections, from one common start: the monotonic clock is the
machine's, so every process's arrival times, admissions and latencies are on the same axis.
While they run, each sends what it counts twice a second; when done, everything it recorded
and the CPU it used, and the runner merges them into one Recorder.
"""

import asyncio
import multiprocessing
import resource
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from multiprocessing.context import SpawnProcess
from multiprocessing.queues import Queue
from queue import Empty

from ticketing.common.settings import CommonSettings

from loadtest.crowd.buyers import run_shard
from loadtest.crowd.client import SaleApi
from loadtest.crowd.recorder import Recorder
from loadtest.report.record import ProcessCpu
from loadtest.scenarios import Scenario

REPORT_SECONDS = 0.5
# Time for every crowd process to import and connect before the first person arrives.
START_TIMEOUT_SECONDS = 120.0
_SPAWN = multiprocessing.get_context("spawn")


@dataclass(frozen=True)
class Counts:
    """What one crowd process counted so far, for the runner's progress lines and samples."""

    shard: int
    arrived: int
    waiting: int
    active: int
    admitted: int
    bought: int
    errors: int
    server_waiting: int | None
    server_active: int | None


@dataclass(frozen=True)
class Done:
    shard: int
    recorder: Recorder
    cpu_seconds: float


@dataclass(frozen=True)
class Ready:
    shard: int


def _cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def _counts(shard: int, recorder: Recorder) -> Counts:
    return Counts(
        shard,
        recorder.arrived,
        recorder.waiting,
        recorder.active,
        len(recorder.admissions),
        recorder.outcomes["bought"],
        recorder.errors,
        recorder.server_waiting,
        recorder.server_active,
    )


async def _shard(
    api: SaleApi,
    scenario: Scenario,
    run_id: str,
    shard: int,
    shards: int,
    started: float,
    out: "Queue[Counts | Done | Ready]",
) -> None:
    recorder = Recorder(started=started)
    cpu_before = _cpu_seconds()

    async def report() -> None:
        while True:
            out.put(_counts(shard, recorder))
            await asyncio.sleep(REPORT_SECONDS)

    reporter = asyncio.create_task(report())
    try:
        await run_shard(api, scenario, CommonSettings(), recorder, run_id, shard, shards)
    finally:
        reporter.cancel()
    out.put(_counts(shard, recorder))
    out.put(Done(shard, recorder, _cpu_seconds() - cpu_before))


def _main(
    api: SaleApi,
    scenario: Scenario,
    run_id: str,
    shard: int,
    shards: int,
    out: "Queue[Counts | Done | Ready]",
    start: "Queue[float]",
) -> None:
    out.put(Ready(shard))
    started = start.get(timeout=START_TIMEOUT_SECONDS)
    asyncio.run(_shard(api, scenario, run_id, shard, shards, started, out))


@dataclass
class Crowd:
    """The running crowd as the runner sees it: the latest counts of each process."""

    processes: int
    counts: dict[int, Counts]
    # Each crowd process's pid by its name in the report ("crowd 0", ...), once started.
    pids: dict[str, int] = field(default_factory=dict)

    def total(self, name: str) -> int:
        return sum(int(getattr(counts, name)) for counts in self.counts.values())

    def server(self, name: str) -> int | None:
        """The queue service's figure as the process that heard from it last reported it."""
        seen = [getattr(c, name) for c in self.counts.values() if getattr(c, name) is not None]
        return max(seen) if seen else None


async def run_crowd(
    api: SaleApi,
    scenario: Scenario,
    recorder: Recorder,
    run_id: str,
    processes: int,
    on_counts: Callable[[Crowd], None],
) -> list[ProcessCpu]:
    """Run the crowd in `processes` processes from `recorder.started` (reset here, once every
    process is ready); merge what they recorded into `recorder`; return their CPU seconds."""
    out: Queue[Counts | Done | Ready] = _SPAWN.Queue()
    starts: list[Queue[float]] = [_SPAWN.Queue() for _ in range(processes)]
    workers: list[SpawnProcess] = [
        _SPAWN.Process(
            target=_main,
            args=(api, scenario, run_id, shard, processes, out, starts[shard]),
            name=f"crowd-{shard}",
            daemon=True,
        )
        for shard in range(processes)
    ]
    crowd = Crowd(processes, {})
    for shard, worker in enumerate(workers):
        worker.start()
        if worker.pid is not None:
            crowd.pids[f"crowd {shard}"] = worker.pid
    cpu: list[ProcessCpu] = []
    try:
        ready = 0
        while ready < processes:
            if isinstance(await asyncio.to_thread(out.get, True, START_TIMEOUT_SECONDS), Ready):
                ready += 1
        recorder.started = time.monotonic() + 0.2
        for start in starts:
            start.put(recorder.started)
        done = 0
        while done < processes:
            try:
                message = await asyncio.to_thread(out.get, True, 1.0)
            except Empty:
                if not any(worker.is_alive() for worker in workers):
                    raise RuntimeError("every crowd process exited before reporting") from None
                continue
            if isinstance(message, Counts):
                crowd.counts[message.shard] = message
                on_counts(crowd)
            elif isinstance(message, Done):
                done += 1
                recorder.merge(message.recorder)
                cpu.append(ProcessCpu(name=f"crowd {message.shard}", seconds=message.cpu_seconds))
    finally:
        for worker in workers:
            worker.join(timeout=10)
            if worker.is_alive():
                worker.kill()
    return sorted(cpu, key=lambda process: process.name)
