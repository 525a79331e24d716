"""Shared parts of the performance benchmarks (`python -m loadtest.bench_*`): real servers on free
ports, the median of several runs, `redis-benchmark` as the ceiling, the CPU the servers used,
the printed table and the raw record.

Every figure is printed with the load average at the time it was taken, because the machines
these run on are often shared and a figure means little without it.
"""

import contextlib
import json
import os
import resource
import shutil
import statistics
import subprocess
import tempfile
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from multiprocessing import get_context
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

from sqlalchemy import text
from sqlalchemy.ext.asyncio import create_async_engine
from ticketing.common.db import server_url
from ticketing_dev.ports import free_port
from ticketing_dev.servers import RedisServer
from ticketing_dev.stack import LocalStack, StackPorts

from loadtest.report.machine import describe_code


class BenchmarkFailed(RuntimeError):
    """A benchmark could not produce its figure (a tool is missing or gave no result)."""


def cpu_seconds(pids: Sequence[int]) -> float:
    """User + system CPU time the processes have used (/proc/<pid>/stat, fields 14 and 15)."""
    total = 0
    for pid in pids:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        total += int(fields[11]) + int(fields[12])
    return total / os.sysconf("SC_CLK_TCK")


def raise_file_limit(wanted: int) -> int:
    """Raise this process's open-file limit (children inherit it); the limit now in force."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < wanted:
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (wanted, max(hard, wanted)))
        except (ValueError, OSError):
            resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    return resource.getrlimit(resource.RLIMIT_NOFILE)[0]


def load_average() -> float:
    """The one-minute load average, printed next to each figure."""
    return os.getloadavg()[0]


@dataclass(frozen=True)
class Sample:
    """One run's figure and the load average when it ended."""

    value: float
    load: float


def median(samples: Sequence[Sample]) -> Sample:
    """The median figure, with the median load of the runs it came from."""
    return Sample(
        statistics.median(s.value for s in samples), statistics.median(s.load for s in samples)
    )


def spread(samples: Sequence[Sample]) -> str:
    """`min..max` of the runs, to show how steady the median is."""
    values = [s.value for s in samples]
    return f"{min(values):,.0f}..{max(values):,.0f}"


@contextlib.contextmanager
def run_dir(prefix: str) -> Iterator[Path]:
    with tempfile.TemporaryDirectory(prefix=prefix) as path:
        yield Path(path)


@contextlib.contextmanager
def redis_server(directory: Path) -> Iterator[RedisServer]:
    """A Redis of its own, configured as the platform runs it (ticketing_dev)."""
    server = RedisServer(directory, free_port())
    server.start()
    try:
        server.wait_ready()
        yield server
    finally:
        server.process.stop()


@contextlib.contextmanager
def local_stack(directory: Path) -> Iterator[LocalStack]:
    """Redis, MariaDB and Kafka on free ports, stopped on the way out."""
    stack = LocalStack(directory, StackPorts.from_env())
    stack.start()
    try:
        yield stack
    finally:
        stack.stop()


async def create_database(url: str) -> None:
    """The database of `url` (a SQLAlchemy URL ending in its name), created if missing."""
    engine = create_async_engine(server_url(url))
    try:
        async with engine.begin() as conn:
            await conn.execute(text(f"CREATE DATABASE IF NOT EXISTS {url.rsplit('/', 1)[1]}"))
    finally:
        await engine.dispose()


def redis_benchmark(
    port: int, command: Sequence[str], requests: int, clients: int = 50, keyspace: int = 0
) -> float:
    """Requests per second `redis-benchmark` reaches for `command`: `clients` connections, no
    pipelining; with `keyspace`, each `__rand_int__` in the command becomes a random number below
    it (12 digits, zero-padded)."""
    binary = shutil.which("redis-benchmark")
    if binary is None:
        raise BenchmarkFailed("redis-benchmark is not installed: apt-get install redis-tools")
    argv = [binary, "-p", str(port), "-c", str(clients), "-n", str(requests), "--csv"]
    if keyspace:
        argv += ["-r", str(keyspace)]
    result = subprocess.run(
        [*argv, *command], capture_output=True, text=True, timeout=300, check=False
    )
    # --csv prints a header line, then `"<command>","<rps>",...` for the one test run.
    lines = [line for line in result.stdout.splitlines() if line and not line.startswith('"test"')]
    if result.returncode != 0 or not lines:
        raise BenchmarkFailed(f"redis-benchmark failed: {result.stderr or result.stdout}")
    return float(lines[-1].split(",")[1].strip('"'))


def markdown_table(headers: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    lines = [
        "| " + " | ".join(headers) + " |",
        "|" + "|".join("---" for _ in headers) + "|",
        *("| " + " | ".join(row) + " |" for row in rows),
    ]
    return "\n".join(lines)


def write_record(path: Path, benchmark: str, figures: Mapping[str, Any]) -> None:
    """A benchmark's raw record (JSON): its figures under the code and machine that made them."""
    record = {
        "benchmark": benchmark,
        "code": describe_code(),
        "finished": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "machine": {"cpus": os.cpu_count(), "uname": " ".join(os.uname())},
        **figures,
    }
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(record, indent=2) + "\n")


@contextlib.contextmanager
def piped_processes(
    target: Callable[..., None], args_each: Sequence[tuple[Any, ...]]
) -> Iterator[list[Connection]]:
    """One client process for each tuple, running `target(*args, pipe)`, each sent jobs over
    its pipe; this yields once every one has sent "ready", and on exit sends each `None` (stop)
    and waits for it. Spawned: no copy of the parent's event loop or servers."""
    context = get_context("spawn")
    pipes: list[Connection] = []
    processes = []
    try:
        for args in args_each:
            ours, theirs = context.Pipe()
            process = context.Process(target=target, args=(*args, theirs), daemon=True)
            process.start()
            pipes.append(ours)
            processes.append(process)
        for pipe in pipes:
            if pipe.recv() != "ready":
                raise BenchmarkFailed("a client process did not start")
        yield pipes
    finally:
        for pipe in pipes:
            with contextlib.suppress(OSError):
                pipe.send(None)
        for process in processes:
            process.join(60)
            if process.is_alive():
                process.kill()
