"""Waiting sockets the queue service holds: open ever more waiting WebSockets (distinct users,
authenticated) against real `python -m ticketing queue` processes, check that every socket keeps
getting its position at least every 2 s, and measure the services' memory per socket and CPU
per status message.

    python -m loadtest.bench_sockets [--steps 1000 10000 50000] [--servers N] [--clients M]
        [--push-interval 1.0] [--window 6] [--json loadtest/results/bench/sockets.json]

One process here cannot open more than 20,000 files (the hard limit, which this machine cannot
raise), so the sockets are spread over `--servers` queue processes (by default as many as hold
at most 17,000 each) and opened by `--clients` client processes (`loadtest/socket_crowd.py`,
the `websockets` library's client, one reading task a socket; by default as many as the
servers). Each socket goes to one service by its index, from one of the loopback source
addresses 127.0.0.2-9; the handshake offers permessage-deflate as every browser's does
(`--no-deflate-offer` to leave it out).

Each step, once open and `--settle` seconds later, is watched for `--window` seconds: every
socket's longest gap between two messages, the services' RSS (`/proc/<pid>/status`, summed) against their RSS with no socket, their CPU
per message, and the clients' CPU (the busiest client's share of a core shows whether the
crowd kept up: near 100 %, the gaps would measure the client too).
"""

import argparse
import math
import statistics
import time
from collections import Counter
from dataclasses import asdict, dataclass
from multiprocessing.connection import Connection
from pathlib import Path

import uvloop

from loadtest.bench_common import (
    cpu_seconds,
    load_average,
    markdown_table,
    piped_processes,
    raise_file_limit,
    redis_server,
    run_dir,
    write_record,
)
from loadtest.queue_target import open_sale, queue_services, service_env
from loadtest.socket_crowd import Grow, Grown, Share, Watch, Watched, crowd_process

REFRESH_TARGET_SECONDS = 2.0
SOCKETS_PER_PROCESS = 17_000  # under the open-file limit of 20,000, with room for the rest
KIB = 1024


def rss_bytes(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * KIB
    raise RuntimeError(f"no VmRSS for process {pid}")


@dataclass(frozen=True)
class Step:
    sockets: int
    open_seconds: float
    failures: dict[str, int]
    refreshed: int  # sockets whose every gap in the window was within the target
    worst_gap: float
    median_gap: float
    messages_per_socket_second: float
    server_cpu_per_message: float  # seconds of service CPU per status message sent
    rss: int  # the services' together
    kib_per_socket: float  # (rss - rss with no socket) / sockets
    server_cpu: float  # cores, the services together, during the window
    client_cpu: float  # cores, the clients together
    busiest_client_cpu: float  # share of one core
    window_seconds: float  # the longest a client's window took (asked: --window)
    load: float


def split(total: int, parts: int) -> list[int]:
    """`total` as `parts` sizes that differ by at most one."""
    return [total // parts + (n < total % parts) for n in range(parts)]


def measure_step(
    pipes: list[Connection], target: int, args: argparse.Namespace, pids: list[int], baseline: int
) -> Step:
    started = time.monotonic()
    for pipe, size in zip(pipes, split(target, len(pipes)), strict=True):
        pipe.send(Grow(size))
    grown: list[Grown] = [pipe.recv() for pipe in pipes]
    open_seconds = time.monotonic() - started
    # The handshakes' backlog cleared first: the window measures sockets held, not opened.
    time.sleep(args.settle)
    window = args.window
    server_before, watch_started = cpu_seconds(pids), time.monotonic()
    for pipe in pipes:
        pipe.send(Watch(window))
    watched: list[Watched] = [pipe.recv() for pipe in pipes]
    server_cpu = cpu_seconds(pids) - server_before
    # Per second of the window as it passed, which a lagging client stretches past `window`.
    server_seconds = time.monotonic() - watch_started
    gaps = [gap for w in watched for gap in w.gaps]
    messages = sum(w.messages for w in watched)
    sockets = sum(g.sockets for g in grown)
    rss = sum(rss_bytes(pid) for pid in pids)
    failures: Counter[str] = Counter()
    for g in grown:
        failures.update(g.failures)
    return Step(
        sockets=sockets,
        open_seconds=open_seconds,
        failures=dict(failures),
        refreshed=sum(gap <= REFRESH_TARGET_SECONDS for gap in gaps),
        worst_gap=max(gaps, default=0.0),
        median_gap=statistics.median(gaps) if gaps else 0.0,
        messages_per_socket_second=sum(w.messages / w.seconds for w in watched) / max(1, sockets),
        server_cpu_per_message=server_cpu / max(1, messages),
        rss=rss,
        kib_per_socket=(rss - baseline) / max(1, sockets) / KIB,
        server_cpu=server_cpu / server_seconds,
        client_cpu=sum(w.cpu_seconds / w.seconds for w in watched),
        busiest_client_cpu=max(w.cpu_seconds / w.seconds for w in watched),
        window_seconds=max(w.seconds for w in watched),
        load=load_average(),
    )


def describe(step: Step) -> str:
    failures = ", ".join(f"{k} x{v}" for k, v in step.failures.items()) or "none failed"
    return (
        f"{step.sockets:,} sockets open ({step.open_seconds:.1f} s; {failures}): "
        f"{step.refreshed:,} refreshed within {REFRESH_TARGET_SECONDS:g} s, worst gap "
        f"{step.worst_gap:.2f} s, median {step.median_gap:.2f} s, "
        f"{step.messages_per_socket_second:.2f} messages/socket/s "
        f"({step.server_cpu_per_message * 1e6:.0f} µs of service CPU each); RSS "
        f"{step.rss / KIB / KIB:,.0f} MiB ({step.kib_per_socket:.1f} KiB/socket); CPU "
        f"services {step.server_cpu:.2f} cores, clients {step.client_cpu:.2f} "
        f"(busiest {step.busiest_client_cpu:.0%}); window {step.window_seconds:.1f} s; "
        f"load {step.load:.1f}"
    )


def run(args: argparse.Namespace) -> tuple[int, int, list[Step]]:
    """The servers' and clients' counts, and each step's figures."""
    largest = max(args.steps)
    servers = args.servers or math.ceil(largest / SOCKETS_PER_PROCESS)
    clients = args.clients or servers
    raise_file_limit(math.ceil(largest / servers) + 1_000)
    steps: list[Step] = []
    with (
        run_dir("bench-sockets-") as directory,
        redis_server(directory) as redis,
        queue_services(directory, service_env(redis.url, args.push_interval), servers) as ports,
    ):
        pids = [pid for _, pid in ports]
        event_id = uvloop.run(open_sale(redis.url))
        baseline = sum(rss_bytes(pid) for pid in pids)
        print(
            f"{servers} queue processes, {clients} client processes; services' RSS with no "
            f"socket {baseline / KIB / KIB:,.1f} MiB; load {load_average():.1f}",
            flush=True,
        )
        shares = [
            Share(
                tuple(p for p, _ in ports), event_id, first, size, args.opening, args.deflate_offer
            )
            for first, size in _ranges(split(largest, clients))
        ]
        with piped_processes(crowd_process, [(share,) for share in shares]) as pipes:
            for target in sorted(args.steps):
                step = measure_step(pipes, target, args, pids, baseline)
                steps.append(step)
                print(describe(step), flush=True)
                if sum(step.failures.values()) > target * 0.01:
                    print("stopped: more than 1 % of the sockets failed to open", flush=True)
                    break
    return servers, clients, steps


def _ranges(sizes: list[int]) -> list[tuple[int, int]]:
    """(first index, size) of consecutive ranges of the given sizes."""
    starts = [sum(sizes[:n]) for n in range(len(sizes))]
    return list(zip(starts, sizes, strict=True))


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m loadtest.bench_sockets")
    parser.add_argument("--steps", type=int, nargs="+", default=[1000, 10000, 50000])
    parser.add_argument("--servers", type=int, default=0, help="queue processes (0: enough)")
    parser.add_argument("--clients", type=int, default=0, help="client processes (0: as servers)")
    parser.add_argument("--window", type=float, default=6.0, help="seconds watched per step")
    parser.add_argument(
        "--settle", type=float, default=10.0, help="seconds between a step's opening and watch"
    )
    parser.add_argument("--opening", type=int, default=50, help="sockets a client opens at once")
    parser.add_argument("--push-interval", type=float, default=1.0)
    parser.add_argument(
        "--deflate-offer",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="offer permessage-deflate in the handshake, as browsers do",
    )
    parser.add_argument("--json", type=Path, help="write the raw figures here (JSON)")
    args = parser.parse_args(argv)
    servers, clients, steps = run(args)
    print()
    print(
        f"{servers} queue processes, {clients} client processes, push interval "
        f"{args.push_interval:g} s, each step watched for {args.window:g} s; memory per socket = "
        f"(services' RSS - their RSS with no socket) / sockets; handshake "
        f"{'offers' if args.deflate_offer else 'does not offer'} permessage-deflate"
    )
    rows = [
        [
            f"{s.sockets:,}",
            f"{s.refreshed / max(1, s.sockets):.1%}",
            f"{s.worst_gap:.2f} s",
            f"{s.rss / KIB / KIB:,.0f} MiB",
            f"{s.kib_per_socket:.1f} KiB",
            f"{s.server_cpu:.2f}",
            f"{s.server_cpu_per_message * 1e6:.0f} µs",
            f"{s.client_cpu:.2f} ({s.busiest_client_cpu:.0%})",
            f"{s.load:.1f}",
        ]
        for s in steps
    ]
    headers = [
        "waiting sockets",
        f"refreshed within {REFRESH_TARGET_SECONDS:g} s",
        "worst gap",
        "services' RSS",
        "per socket",
        "services' cores",
        "service CPU a message",
        "clients' cores (busiest)",
        "load",
    ]
    print(markdown_table(headers, rows))
    if args.json:
        write_record(
            args.json,
            "bench_sockets",
            {
                "arguments": {
                    k: str(v) if isinstance(v, Path) else v for k, v in vars(args).items()
                },
                "servers": servers,
                "clients": clients,
                "steps": [asdict(s) for s in steps],
            },
        )
        print(f"raw figures: {args.json}")


if __name__ == "__main__":
    main()
