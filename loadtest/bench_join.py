"""Queue-join throughput: authenticated joins (HTTP `POST /sales/{sale}/queue` and WebSocket
joins) against real `python -m ticketing queue` processes on a real Redis, from client processes
of their own, next to `redis-benchmark` running the join's sorted-set command in the same run.

    python -m loadtest.bench_join [--runs 3] [--seconds 30] [--servers 2] [--processes 2]
    python -m loadtest.bench_join --profile [--users 10000]   # the app's own CPU a join, profiled

Every join is by a distinct user (plus a share of repeated joins, as from a second tab); after
each run the line must hold exactly one place per user. The services and their users are set up
by `queue_target`, the client processes are `join_clients` (aiohttp over HTTP, the `websockets`
client over WebSocket), and `--profile` is `join_profile`.

The `websockets` client spends about half the CPU a WebSocket join that the service does (some
750 µs against some 1,400 µs, side by side on a loaded 2-core machine; a hand-written minimal
client spent 300-360 µs): with as many client processes as service processes, the services run
out of CPU first. Each run prints both, and the service's CPU a join is read from the service's
own processes (/proc), which the client's cost does not change.
"""

import argparse
import asyncio
import time
import uuid
from collections import Counter
from dataclasses import dataclass
from multiprocessing.connection import Connection
from typing import cast

import redis.asyncio as aioredis
from ticketing.common.redis_keys import SaleKeys
from ticketing.queue.settings import QueueSettings
from ticketing.queue.store import SaleQueue

from loadtest.bench_common import (
    BenchmarkFailed,
    Sample,
    cpu_seconds,
    load_average,
    markdown_table,
    median,
    raise_file_limit,
    redis_benchmark,
    redis_server,
    run_dir,
    spread,
)
from loadtest.bench_hold import RecordingRedis
from loadtest.join_clients import Job, Outcome, client_processes
from loadtest.join_profile import profile
from loadtest.queue_target import PREFIX, make_sale, open_sale, queue_services, service_env

TARGET_JOINS = 10_000
CEILING_REQUESTS = 100_000
CEILING_KEYSPACE = 100_000_000


# --- one run --------------------------------------------------------------------------------


@dataclass(frozen=True)
class JoinRun:
    rate: Sample
    slowest_second: int
    users: int
    places: int
    tickets: int
    errors: Counter[str]
    client_cpu: float  # share of one core, all client processes together
    server_cpu: float  # share of one core, all service processes together
    ran_out: bool


async def line_counts(redis_url: str, event_id: str) -> tuple[int, int]:
    """(places in the line, tickets handed out)."""
    client = aioredis.Redis.from_url(redis_url)
    keys = SaleKeys(PREFIX, event_id)
    try:
        places = await client.zcard(keys.waiting)
        tickets = int(await client.get(keys.ticket_seq) or 0)
    finally:
        await client.aclose()
    return places, tickets


def one_run(
    mode: str,
    redis_url: str,
    servers: list[tuple[int, int]],
    pipes: list[Connection],
    args: argparse.Namespace,
) -> JoinRun:
    event_id = asyncio.run(open_sale(redis_url))
    pids = [pid for _, pid in servers]
    job = Job(
        mode,
        event_id,
        tuple(port for port, _ in servers),
        args.connections,
        time.time() + 1.0,
        args.seconds,
        args.repeat_share,
    )
    server_before = cpu_seconds(pids)
    for pipe in pipes:
        pipe.send(job)
    outcomes: list[Outcome] = [pipe.recv() for pipe in pipes]
    server_cpu = (cpu_seconds(pids) - server_before) / args.seconds
    per_second: Counter[int] = Counter()
    errors: Counter[str] = Counter()
    for outcome in outcomes:
        per_second.update(outcome.per_second)
        errors.update(outcome.errors)
    joins = sum(o.joins for o in outcomes)
    full_seconds = [per_second[s] for s in range(int(args.seconds))]
    places, tickets = asyncio.run(line_counts(redis_url, event_id))
    return JoinRun(
        rate=Sample(joins / args.seconds, load_average()),
        slowest_second=min(full_seconds),
        users=sum(o.users for o in outcomes),
        places=places,
        tickets=tickets,
        errors=errors,
        client_cpu=sum(o.cpu_seconds for o in outcomes) / args.seconds,
        server_cpu=server_cpu,
        ran_out=any(o.ran_out for o in outcomes),
    )


# --- the ceilings ---------------------------------------------------------------------------


async def join_command(redis_url: str) -> list[str]:
    """The EVALSHA one join sends (recorded from SaleQueue.join), the user made random."""
    event_id = await open_sale(redis_url)
    client = cast(RecordingRedis, RecordingRedis.from_url(redis_url))
    client.sent = []
    try:
        settings = QueueSettings(redis_url=redis_url, redis_key_prefix=PREFIX)
        await SaleQueue(client, settings.redis_key_prefix, event_id).join(
            "RECORDED-USER", make_sale(event_id)
        )
    finally:
        await client.aclose()
    return [arg.replace("RECORDED-USER", "u__rand_int__") for arg in client.sent[-1]]


def ceilings(port: int, redis_url: str) -> tuple[Sample, Sample]:
    """redis-benchmark -c 50, no pipelining: ZADD NX of a random member into a sale's line (the
    sorted-set write a join makes), and EVALSHA of the whole join script for random users."""
    waiting = SaleKeys(PREFIX, uuid.uuid4().hex[:8]).waiting
    zadd = redis_benchmark(
        port,
        ["ZADD", waiting, "NX", "__rand_int__", "u__rand_int__"],
        CEILING_REQUESTS,
        keyspace=CEILING_KEYSPACE,
    )
    zadd_sample = Sample(zadd, load_average())
    command = asyncio.run(join_command(redis_url))
    script = redis_benchmark(port, command, CEILING_REQUESTS // 2, keyspace=CEILING_KEYSPACE)
    return zadd_sample, Sample(script, load_average())


# --- main -----------------------------------------------------------------------------------


def check_one_place_per_user(run: JoinRun) -> str:
    if run.places == run.users and run.tickets == run.users:
        return "one place per user"
    # A request that timed out may still have joined: only then can the line hold more.
    if run.errors and run.users <= run.places == run.tickets <= run.users + run.errors.total():
        return f"one place per user ({run.places - run.users} joined by timed-out requests)"
    raise BenchmarkFailed(
        f"the line holds {run.places} places and {run.tickets} tickets for {run.users} users"
    )


def service_cpu_per_join(run: JoinRun) -> float:
    """Microseconds of the services' CPU per join: less sensitive to a busy machine than joins/s."""
    return run.server_cpu / max(1.0, run.rate.value) * 1e6


def describe(mode: str, n: int, run: JoinRun, ceiling: Sample) -> str:
    errors = ", ".join(f"{k} x{v}" for k, v in run.errors.items()) or "no errors"
    return (
        f"run {n} {mode}: {run.rate.value:,.0f} joins/s (slowest second {run.slowest_second:,}), "
        f"{run.users:,} users, {run.places:,} places: {check_one_place_per_user(run)}; {errors}; "
        f"CPU client {run.client_cpu:.0%} service {run.server_cpu:.0%} of a core "
        f"({service_cpu_per_join(run):,.0f} µs a join); "
        f"ceiling ZADD {ceiling.value:,.0f}/s; load {run.rate.load:.1f}"
        + ("; fresh users ran out" if run.ran_out else "")
    )


def row(
    mode: str, runs: list[JoinRun], zadd: Sample, script: Sample, args: argparse.Namespace
) -> list[str]:
    figure = median([r.rate for r in runs])
    name = {"http": "HTTP POST", "ws": "WebSocket"}[mode]
    return [
        f"queue join, {name}, {args.servers} service process(es), {args.processes} client "
        f"process(es) x {args.connections}",
        f"{figure.value:,.0f} joins/s ({spread([r.rate for r in runs])}); slowest second "
        f"{min(r.slowest_second for r in runs):,}",
        f"{zadd.value:,.0f}/s (join script {script.value:,.0f}/s)",
        f"{figure.value / zadd.value:.1%}",
        f"{median([Sample(r.client_cpu, 0) for r in runs]).value:.0%} / "
        f"{median([Sample(r.server_cpu, 0) for r in runs]).value:.0%}",
        f"{median([Sample(service_cpu_per_join(r), 0) for r in runs]).value:,.0f} µs",
        f"{figure.load:.1f}",
    ]


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m loadtest.bench_join")
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--seconds", type=float, default=30.0)
    parser.add_argument("--servers", type=int, default=2, help="queue-service processes")
    parser.add_argument("--processes", type=int, default=2, help="client processes")
    parser.add_argument("--connections", type=int, default=64, help="concurrent callers each")
    parser.add_argument("--modes", nargs="+", choices=["http", "ws"], default=["http", "ws"])
    parser.add_argument(
        "--repeat-share", type=float, default=0.1, help="share of joins by a user already in line"
    )
    parser.add_argument(
        "--users",
        type=int,
        default=0,
        help="users minted per client process (default: enough for the target rate)",
    )
    parser.add_argument(
        "--profile",
        action="store_true",
        help="instead: the queue app's own CPU a join, in-process, and a profile of it",
    )
    args = parser.parse_args(argv)
    if args.profile:
        with run_dir("bench-join-") as directory, redis_server(directory) as redis:
            profile(redis.url, args.users or 10_000, args.connections)
        return
    tokens_each = args.users or int(TARGET_JOINS * args.seconds / args.processes)
    raise_file_limit(65_536)

    with (
        run_dir("bench-join-") as directory,
        redis_server(directory) as redis,
        queue_services(directory, service_env(redis.url), args.servers) as servers,
        client_processes(args.processes, tokens_each) as pipes,
    ):
        runs: dict[str, list[JoinRun]] = {mode: [] for mode in args.modes}
        zadds, scripts = [], []
        for n in range(1, args.runs + 1):
            zadd, script = ceilings(redis.port, redis.url)
            zadds.append(zadd)
            scripts.append(script)
            for mode in args.modes:
                run = one_run(mode, redis.url, servers, pipes, args)
                runs[mode].append(run)
                print(describe(mode, n, run, zadd), flush=True)
    zadd, script = median(zadds), median(scripts)
    print()
    print(
        f"median of {args.runs} runs of {args.seconds:g} s; ceiling: redis-benchmark -c 50 "
        f"ZADD <waiting> NX <rand> u<rand> ({spread(zadds)}), and EVALSHA of the join script "
        f"for random users ({spread(scripts)}); target {TARGET_JOINS:,} joins/s and >= 12 % "
        "of the ZADD ceiling"
    )
    print(
        markdown_table(
            [
                "path",
                "figure (min..max)",
                "ceiling",
                "ratio",
                "CPU client / service",
                "service CPU a join",
                "load",
            ],
            [row(mode, runs[mode], zadd, script, args) for mode in args.modes],
        )
    )


if __name__ == "__main__":
    main()
