"""Waiting sockets one queue-service process holds: open ever more waiting WebSockets (distinct
users, authenticated) against one real `python -m ticketing queue` process, check that every
socket keeps getting its position at least every 2 s, and measure the process's memory per socket.

    python -m loadtest.bench_sockets [--steps 1000 5000 10000 20000 50000] [--window 6]

The client is the `websockets` library's (one connection and one reading task a socket, opened
by `queue_target`); its handshake offers permessage-deflate as every browser's does
(`--no-deflate-offer` to leave it out): whether the server accepts decides whether each socket
carries a zlib context. Connections come from several loopback source addresses (127.0.0.2-9),
each with its own ephemeral ports, and the open-file limit is raised for this process and the
service it starts. The last lines extrapolate the largest step's memory and CPU per socket to
50,000 sockets (not measured: see the open-file limit).

The client reads a status message for some 32 µs of CPU against some 45 µs the service spends
sending it (6,000 sockets on a loaded 2-core machine; a hand-written minimal client spent 16-20
µs): at 19,000 sockets and a 1 s push interval, some 0.6 of a core, so this process keeps up with
the service's. Each step prints both CPUs: were the client's to near a whole core, the gaps would
measure the client too.
"""

import argparse
import asyncio
import contextlib
import statistics
import time
from dataclasses import dataclass
from pathlib import Path

import uvloop
from websockets.asyncio.client import ClientConnection
from websockets.exceptions import ConnectionClosed, WebSocketException

from loadtest.bench_common import (
    cpu_seconds,
    load_average,
    markdown_table,
    raise_file_limit,
    redis_server,
    run_dir,
)
from loadtest.queue_target import (
    SOURCE_ADDRESSES,
    mint_tokens,
    open_sale,
    open_waiting_socket,
    queue_services,
    service_env,
)

REFRESH_TARGET_SECONDS = 2.0
EXTRAPOLATE_TO = 50_000
KIB = 1024


def rss_bytes(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * KIB
    raise RuntimeError(f"no VmRSS for process {pid}")


class WatchedSocket:
    """One open waiting socket: counts its status messages and the longest gap between two."""

    def __init__(self, connection: ClientConnection) -> None:
        self.connection = connection
        self.messages = 1  # the first, which arrived as the socket opened
        self.last_at = time.monotonic()
        self.max_gap = 0.0
        self.watching = asyncio.create_task(self._watch())

    async def _watch(self) -> None:
        with contextlib.suppress(ConnectionClosed):
            async for _ in self.connection:
                now = time.monotonic()
                self.max_gap = max(self.max_gap, now - self.last_at)
                self.messages += 1
                self.last_at = now

    @property
    def closed(self) -> bool:
        return self.watching.done()

    def reset_gap(self) -> None:
        self.max_gap = 0.0


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
    rss: int
    server_cpu: float  # share of one core during the window
    client_cpu: float
    load: float


class Crowd:
    """The open waiting sockets, opened a bounded number at a time."""

    def __init__(
        self,
        port: int,
        event_id: str,
        tokens: list[tuple[str, str]],
        opening: int,
        offer_deflate: bool,
    ):
        self.port = port
        self.event_id = event_id
        self.tokens = tokens
        self.offer_deflate = offer_deflate
        self.gate = asyncio.Semaphore(opening)
        self.sockets: list[WatchedSocket] = []
        self.failures: dict[str, int] = {}

    async def _open_one(self, index: int) -> None:
        async with self.gate:
            _, token = self.tokens[index]
            source = SOURCE_ADDRESSES[index % len(SOURCE_ADDRESSES)]
            try:
                connection, _ = await open_waiting_socket(
                    self.port, self.event_id, token, source, offer_deflate=self.offer_deflate
                )
            except (OSError, WebSocketException) as exc:
                reason = f"{type(exc).__name__}: {exc}"[:80]
                self.failures[reason] = self.failures.get(reason, 0) + 1
                return
            self.sockets.append(WatchedSocket(connection))

    async def grow_to(self, total: int) -> None:
        start = len(self.sockets) + sum(self.failures.values())
        await asyncio.gather(*(self._open_one(n) for n in range(start, total)))

    def gaps(self) -> list[float]:
        """Each socket's longest wait between two messages since the last reset, counting the
        wait since its last message; a closed socket counts as never refreshed."""
        now = time.monotonic()
        return [
            max(s.max_gap, now - s.last_at) if not s.closed else float("inf") for s in self.sockets
        ]

    async def close_all(self) -> None:
        await asyncio.gather(*(s.connection.close() for s in self.sockets))


async def measure(
    args: argparse.Namespace, port: int, pid: int, redis_url: str
) -> tuple[int, list[Step]]:
    """The service's RSS with no socket open, and each step's figures."""
    event_id = await open_sale(redis_url)
    tokens = await asyncio.to_thread(mint_tokens, max(args.steps))
    crowd = Crowd(port, event_id, tokens, args.opening, args.deflate_offer)
    deadline = time.monotonic() + args.max_seconds
    steps: list[Step] = []
    baseline = rss_bytes(pid)
    print(f"service RSS with no socket: {baseline / KIB / KIB:,.1f} MiB", flush=True)
    try:
        for total in args.steps:
            started = time.monotonic()
            try:
                async with asyncio.timeout(max(1.0, deadline - started)):
                    await crowd.grow_to(total)
            except TimeoutError:
                print(f"stopped opening at {len(crowd.sockets):,}: out of time", flush=True)
                break
            open_seconds = time.monotonic() - started
            for socket in crowd.sockets:
                socket.reset_gap()
            messages_before = sum(s.messages for s in crowd.sockets)
            server_before, client_before = cpu_seconds([pid]), time.process_time()
            await asyncio.sleep(args.window)
            gaps = crowd.gaps()
            messages = sum(s.messages for s in crowd.sockets) - messages_before
            server_cpu = cpu_seconds([pid]) - server_before
            step = Step(
                sockets=len(crowd.sockets),
                open_seconds=open_seconds,
                failures=dict(crowd.failures),
                refreshed=sum(gap <= REFRESH_TARGET_SECONDS for gap in gaps),
                worst_gap=max(gaps),
                median_gap=statistics.median(gaps),
                messages_per_socket_second=messages / max(1, len(crowd.sockets)) / args.window,
                server_cpu_per_message=server_cpu / max(1, messages),
                rss=rss_bytes(pid),
                server_cpu=server_cpu / args.window,
                client_cpu=(time.process_time() - client_before) / args.window,
                load=load_average(),
            )
            steps.append(step)
            print(describe(step, baseline), flush=True)
            if step.failures and sum(step.failures.values()) > total * 0.01:
                print("stopped: more than 1 % of the sockets failed to open", flush=True)
                break
    finally:
        await crowd.close_all()
    return baseline, steps


def per_socket(step: Step, baseline: int) -> float:
    return (step.rss - baseline) / max(1, step.sockets) / KIB


def describe(step: Step, baseline: int) -> str:
    failures = ", ".join(f"{k} x{v}" for k, v in step.failures.items()) or "none failed"
    return (
        f"{step.sockets:,} sockets open ({step.open_seconds:.1f} s; {failures}): "
        f"{step.refreshed:,} refreshed within {REFRESH_TARGET_SECONDS:g} s, worst gap "
        f"{step.worst_gap:.2f} s, median {step.median_gap:.2f} s, "
        f"{step.messages_per_socket_second:.2f} messages/socket/s "
        f"({step.server_cpu_per_message * 1e6:.0f} µs of service CPU each); RSS "
        f"{step.rss / KIB / KIB:,.0f} MiB ({per_socket(step, baseline):.1f} KiB/socket); CPU "
        f"service {step.server_cpu:.0%}, client {step.client_cpu:.0%}; load {step.load:.1f}"
    )


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m loadtest.bench_sockets")
    parser.add_argument("--steps", type=int, nargs="+", default=[1000, 5000, 10000, 19000, 50000])
    parser.add_argument("--window", type=float, default=6.0, help="seconds watched per step")
    parser.add_argument("--opening", type=int, default=50, help="sockets opening at once")
    parser.add_argument("--push-interval", type=float, default=1.0)
    parser.add_argument("--max-seconds", type=float, default=600.0, help="bound on opening")
    parser.add_argument(
        "--deflate-offer",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="offer permessage-deflate in the handshake, as browsers do",
    )
    args = parser.parse_args(argv)
    limit = raise_file_limit(max(args.steps) + 10_000)
    print(f"open-file limit {limit:,}; load {load_average():.1f}", flush=True)

    with (
        run_dir("bench-sockets-") as directory,
        redis_server(directory) as redis,
        queue_services(directory, service_env(redis.url, args.push_interval), 1) as servers,
    ):
        port, pid = servers[0]
        baseline, steps = uvloop.run(measure(args, port, pid, redis.url))
    rows = [
        [
            f"{s.sockets:,}",
            f"{s.refreshed / max(1, s.sockets):.1%}",
            f"{s.worst_gap:.2f} s",
            f"{s.rss / KIB / KIB:,.0f} MiB",
            f"{per_socket(s, baseline):.1f} KiB",
            f"{s.server_cpu:.0%}",
            f"{s.server_cpu_per_message * 1e6:.0f} µs",
            f"{s.load:.1f}",
        ]
        for s in steps
    ]
    print()
    print(
        f"one queue-service process, push interval {args.push_interval:g} s, each step watched "
        f"for {args.window:g} s; memory per socket = (RSS - RSS with no socket) / sockets; "
        f"handshake {'offers' if args.deflate_offer else 'does not offer'} permessage-deflate"
    )
    print(
        markdown_table(
            [
                "waiting sockets",
                f"refreshed within {REFRESH_TARGET_SECONDS:g} s",
                "worst gap",
                "service RSS",
                "per socket",
                "service CPU",
                "service CPU a message",
                "load",
            ],
            rows,
        )
    )
    if steps:
        print(extrapolation(steps[-1], baseline, args.push_interval))


def extrapolation(step: Step, baseline: int, push_interval: float) -> str:
    """The largest step's cost per socket scaled to 50,000 sockets: arithmetic, not a measurement."""
    memory = baseline + EXTRAPOLATE_TO * per_socket(step, baseline) * KIB
    cores = EXTRAPOLATE_TO * step.server_cpu_per_message / push_interval
    return (
        f"extrapolated to {EXTRAPOLATE_TO:,} sockets from the {step.sockets:,} step (not measured): "
        f"RSS ~{memory / KIB / KIB / KIB:.2f} GiB, service CPU ~{cores:.2f} cores at a "
        f"{push_interval:g} s push interval ({cores * push_interval / 2:.2f} at 2 s)"
    )


if __name__ == "__main__":
    main()
