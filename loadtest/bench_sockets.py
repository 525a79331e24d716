"""Waiting sockets one queue-service process holds: open ever more waiting WebSockets (distinct
users, authenticated) against one real `python -m ticketing queue` process, check that every
socket keeps getting its position at least every 2 s, and measure the process's memory per socket.

    python -m loadtest.bench_sockets [--steps 1000 5000 10000 20000 50000] [--window 6]

The client is the lean one of `bench_join` (handshake, frame reader, pong), but its handshake offers
permessage-deflate as every browser's does (`--no-deflate-offer` to leave it out): whether the
server accepts decides whether each socket carries a zlib context. Connections come from several
loopback source addresses (127.0.0.2-9), each with its own ephemeral ports, and the open-file
limit is raised for this process and the service it starts. The last lines extrapolate the largest
step's memory and CPU per socket to 50,000 sockets (not measured: see the open-file limit).
"""

import argparse
import asyncio
import statistics
import time
from dataclasses import dataclass
from pathlib import Path

import uvloop

from loadtest.bench_common import load_average, markdown_table, redis_server, run_dir
from loadtest.bench_join import (
    OPEN_TIMEOUT_SECONDS,
    SOURCE_ADDRESSES,
    WebSocketClient,
    WebSocketRefused,
    cpu_seconds,
    mint_tokens,
    open_sale,
    queue_services,
    raise_file_limit,
    service_env,
    ws_path,
)

REFRESH_TARGET_SECONDS = 2.0
EXTRAPOLATE_TO = 50_000
KIB = 1024
# What Chrome and Firefox send in every WebSocket handshake.
BROWSER_DEFLATE_OFFER = b"Sec-WebSocket-Extensions: permessage-deflate; client_max_window_bits\r\n"


def rss_bytes(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * KIB
    raise RuntimeError(f"no VmRSS for process {pid}")


def handshake(port: int, path: str, offer_deflate: bool) -> bytes:
    request = WebSocketClient.request_for(port, path)
    # The request ends with an empty line; the offer goes just before it.
    return request[:-2] + BROWSER_DEFLATE_OFFER + b"\r\n" if offer_deflate else request


async def open_waiting_socket(port: int, request: bytes, source: str) -> WebSocketClient:
    """A joined waiting socket, once its first status message has arrived."""
    loop = asyncio.get_running_loop()
    _, client = await loop.create_connection(
        lambda: WebSocketClient(request), "127.0.0.1", port, local_addr=(source, 0)
    )
    try:
        async with asyncio.timeout(OPEN_TIMEOUT_SECONDS):
            await client.upgraded
            await client.first_message
    except BaseException:
        client.close()
        raise
    return client


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
        self.clients: list[WebSocketClient] = []
        self.failures: dict[str, int] = {}

    async def _open_one(self, index: int) -> None:
        async with self.gate:
            _, token = self.tokens[index]
            source = SOURCE_ADDRESSES[index % len(SOURCE_ADDRESSES)]
            request = handshake(self.port, ws_path(self.event_id, token), self.offer_deflate)
            try:
                client = await open_waiting_socket(self.port, request, source)
            except (OSError, WebSocketRefused, TimeoutError) as exc:
                reason = f"{type(exc).__name__}: {exc}"[:80]
                self.failures[reason] = self.failures.get(reason, 0) + 1
                return
            self.clients.append(client)

    async def grow_to(self, total: int) -> None:
        start = len(self.clients) + sum(self.failures.values())
        await asyncio.gather(*(self._open_one(n) for n in range(start, total)))

    def gaps(self) -> list[float]:
        """Each socket's longest wait between two messages since the last reset, counting the
        wait since its last message; a closed socket counts as never refreshed."""
        now = time.monotonic()
        return [
            max(c.max_gap, now - c.last_at) if not c.closed.done() else float("inf")
            for c in self.clients
        ]

    def close_all(self) -> None:
        for client in self.clients:
            if client.transport is not None:
                client.transport.abort()


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
                print(f"stopped opening at {len(crowd.clients):,}: out of time", flush=True)
                break
            open_seconds = time.monotonic() - started
            for client in crowd.clients:
                client.reset_gap()
            messages_before = sum(c.messages for c in crowd.clients)
            server_before, client_before = cpu_seconds([pid]), time.process_time()
            await asyncio.sleep(args.window)
            gaps = crowd.gaps()
            messages = sum(c.messages for c in crowd.clients) - messages_before
            server_cpu = cpu_seconds([pid]) - server_before
            step = Step(
                sockets=len(crowd.clients),
                open_seconds=open_seconds,
                failures=dict(crowd.failures),
                refreshed=sum(gap <= REFRESH_TARGET_SECONDS for gap in gaps),
                worst_gap=max(gaps),
                median_gap=statistics.median(gaps),
                messages_per_socket_second=messages / max(1, len(crowd.clients)) / args.window,
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
        crowd.close_all()
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
