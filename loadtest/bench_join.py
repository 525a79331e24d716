"""Queue-join throughput: authenticated joins (HTTP `POST /sales/{sale}/queue` and WebSocket
joins) against real `python -m ticketing queue` processes on a real Redis, from client processes
of their own; in the same run, a bare FastAPI endpoint on the same server stack
(`loadtest.bare_endpoint`) and `redis-benchmark` running the join's sorted-set command.

    python -m loadtest.bench_join [--runs 3] [--seconds 30] [--servers 2] [--processes 2]
        [--modes http ws bare] [--json loadtest/results/bench/join.json]
    python -m loadtest.bench_join --profile [--users 10000]   # the app's own CPU a join, profiled

Each mode reports requests a second, the services' CPU a request, p50 and p99, and the join's
CPU and p99 as multiples of the bare endpoint's; `--json` writes every run's figures with the
commit (`bench_common.write_record`).

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
from multiprocessing.connection import Connection
from pathlib import Path
from typing import cast

import redis.asyncio as aioredis
from ticketing.common.redis_keys import SaleKeys
from ticketing.queue.settings import QueueSettings
from ticketing.queue.store import SaleQueue

from loadtest.bench_common import (
    Sample,
    cpu_seconds,
    load_average,
    markdown_table,
    median,
    piped_processes,
    raise_file_limit,
    redis_benchmark,
    redis_server,
    run_dir,
    spread,
    write_record,
)
from loadtest.bench_hold import RecordingRedis
from loadtest.join_clients import Job, Outcome, client_process
from loadtest.join_figures import (
    CPU_GOAL,
    MODES,
    P99_GOAL,
    JoinRun,
    ModeSummary,
    describe,
    row,
)
from loadtest.join_floor import describe_floor, measure_token_floor
from loadtest.join_profile import profile
from loadtest.queue_target import (
    PREFIX,
    bare_services,
    make_sale,
    open_sale,
    queue_services,
    service_env,
)
from loadtest.report.analysis import percentile

TARGET_JOINS = 10_000
CEILING_REQUESTS = 100_000
CEILING_KEYSPACE = 100_000_000


# --- one run --------------------------------------------------------------------------------


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
        "ws" if mode == "ws" else "http",
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
    latencies: list[float] = []
    for outcome in outcomes:
        per_second.update(outcome.per_second)
        errors.update(outcome.errors)
        latencies += outcome.latencies_ms
    joins = sum(o.joins for o in outcomes)
    full_seconds = [per_second[s] for s in range(int(args.seconds))]
    places, tickets = (
        (None, None) if mode == "bare" else asyncio.run(line_counts(redis_url, event_id))
    )
    return JoinRun(
        rate=Sample(joins / args.seconds, load_average()),
        slowest_second=min(full_seconds),
        users=sum(o.users for o in outcomes),
        places=places,
        tickets=tickets,
        errors=errors,
        client_cpu=sum(o.cpu_seconds for o in outcomes) / args.seconds,
        server_cpu=server_cpu,
        p50_ms=percentile(latencies, 0.50) or 0.0,
        p99_ms=percentile(latencies, 0.99) or 0.0,
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


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m loadtest.bench_join")
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--seconds", type=float, default=30.0)
    parser.add_argument("--servers", type=int, default=2, help="service processes of each kind")
    parser.add_argument("--processes", type=int, default=2, help="client processes")
    parser.add_argument("--connections", type=int, default=64, help="concurrent callers each")
    parser.add_argument("--modes", nargs="+", choices=list(MODES), default=list(MODES))
    parser.add_argument(
        "--repeat-share", type=float, default=0.1, help="share of joins by a user already in line"
    )
    parser.add_argument(
        "--users",
        type=int,
        default=0,
        help="users minted per client process (default: enough for the target rate)",
    )
    parser.add_argument("--json", type=Path, help="also write the raw record to this file")
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
        queue_services(directory, service_env(redis.url), args.servers) as queue,
        bare_services(directory, args.servers if "bare" in args.modes else 0) as bare,
        piped_processes(client_process, [(tokens_each,)] * args.processes) as pipes,
    ):
        servers = {"http": queue, "ws": queue, "bare": bare}
        runs: dict[str, list[JoinRun]] = {mode: [] for mode in args.modes}
        zadds, scripts, floors = [], [], []
        for n in range(1, args.runs + 1):
            zadd, script = ceilings(redis.port, redis.url)
            zadds.append(zadd)
            scripts.append(script)
            floors.append(measure_token_floor())
            for mode in args.modes:
                run = one_run(mode, redis.url, servers[mode], pipes, args)
                runs[mode].append(run)
                print(describe(mode, n, run, zadd), flush=True)
    zadd, script = median(zadds), median(scripts)
    summaries = {mode: ModeSummary.of(runs[mode]) for mode in args.modes}
    bare_summary = summaries.get("bare")
    print(describe_floor(floors, bare_summary.cpu_us if bare_summary else None))
    print()
    print(
        f"median of {args.runs} runs of {args.seconds:g} s; ceiling: redis-benchmark -c 50 "
        f"ZADD <waiting> NX <rand> u<rand> {zadd.value:,.0f}/s ({spread(zadds)}), and EVALSHA "
        f"of the join script for random users {script.value:,.0f}/s ({spread(scripts)}); "
        f"goals: >= 12 % of the ZADD ceiling, service CPU a join <= {CPU_GOAL}x and p99 <= "
        f"{P99_GOAL}x the bare endpoint's"
    )
    print(
        markdown_table(
            [
                "path",
                "requests/s (min..max)",
                "of ZADD",
                "CPU client / service",
                "service CPU a request",
                "p50 / p99",
                "CPU / p99 vs bare",
                "load",
            ],
            [
                row(mode, runs[mode], summaries[mode], bare_summary, zadd, args)
                for mode in args.modes
            ],
        )
    )
    if args.json:
        write_record(
            args.json,
            "bench_join",
            {
                "settings": {
                    key: getattr(args, key)
                    for key in (
                        "runs",
                        "seconds",
                        "servers",
                        "processes",
                        "connections",
                        "repeat_share",
                    )
                },
                "ceilings": {
                    "zadd_per_second": [vars(s) for s in zadds],
                    "join_script_per_second": [vars(s) for s in scripts],
                },
                "floors": {
                    "token_check_us": [vars(f.token_check) for f in floors],
                    "signature_us": [vars(f.signature) for f in floors],
                },
                "runs": {mode: [r.figures() for r in runs[mode]] for mode in args.modes},
                "medians": {
                    mode: vars(summaries[mode]) | {"rate": vars(summaries[mode].rate)}
                    for mode in args.modes
                },
            },
        )


if __name__ == "__main__":
    main()
