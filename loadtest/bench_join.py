"""Queue-join throughput: authenticated joins (HTTP `POST /sales/{sale}/queue` and WebSocket
joins) against real `python -m ticketing queue` processes on a real Redis, from client processes
of their own, next to `redis-benchmark` running the join's sorted-set command in the same run.

    python -m loadtest.bench_join [--runs 3] [--seconds 30] [--servers 2] [--processes 2]
    python -m loadtest.bench_join --profile [--users 10000]   # the app's own CPU a join, profiled

Every join is by a distinct user (plus a share of repeated joins, as from a second tab); after
each run the line must hold exactly one place per user. The WebSocket client is a minimal one
(handshake, frame reader, pong), so that the client costs far less CPU than the service.
"""

import argparse
import asyncio
import base64
import json
import os
import pstats
import random
import resource
import sys
import time
import uuid
from collections import Counter
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from cProfile import Profile
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from functools import partial
from multiprocessing import Pipe, Process
from multiprocessing.connection import Connection
from pathlib import Path
from typing import cast

import aiohttp
import redis.asyncio as aioredis
import uvloop
from starlette.types import Message, Scope
from ticketing.common.redis_keys import SaleKeys
from ticketing.common.sale_config import Phase, SaleConfig, write_sale_config
from ticketing.common.settings import CommonSettings
from ticketing.common.tokens import Principal, issue_access_token
from ticketing.queue.app import create_app
from ticketing.queue.settings import QueueSettings
from ticketing.queue.store import SaleQueue
from ticketing_dev.ports import free_port
from ticketing_dev.process import ManagedProcess, http_ready

from loadtest.bench_common import (
    BenchmarkFailed,
    Sample,
    load_average,
    markdown_table,
    median,
    redis_benchmark,
    redis_server,
    run_dir,
    spread,
)
from loadtest.bench_hold import RecordingRedis

PREFIX = "bench"
REPO_ROOT = Path(__file__).resolve().parents[1]
TARGET_JOINS = 10_000
CEILING_REQUESTS = 100_000
CEILING_KEYSPACE = 100_000_000
# Loopback source addresses: each gives its own ~28k ephemeral ports towards one server port.
SOURCE_ADDRESSES = [f"127.0.0.{n}" for n in range(2, 10)]


# --- the queue service, for real ------------------------------------------------------------


def service_env(redis_url: str, push_interval: float = 1.0) -> dict[str, str]:
    return {
        "TICKETING_REDIS_URL": redis_url,
        "TICKETING_REDIS_KEY_PREFIX": PREFIX,
        # Nobody is admitted during a benchmark: the line keeps everyone who joined, to be counted.
        "TICKETING_QUEUE_RUN_ADMISSION": "false",
        "TICKETING_QUEUE_PUSH_INTERVAL_SECONDS": str(push_interval),
        "TICKETING_LOG_LEVEL": "WARNING",
    }


@contextmanager
def queue_services(
    directory: Path, env: dict[str, str], count: int
) -> Iterator[list[tuple[int, int]]]:
    """`count` queue-service processes (uvicorn, one event loop each): (port, pid) of each."""
    processes: list[ManagedProcess] = []
    ports: list[tuple[int, int]] = []
    try:
        for n in range(count):
            port = free_port()
            process = ManagedProcess(
                f"queue-{n}",
                [sys.executable, "-m", "ticketing", "queue", "--port", str(port)],
                directory / "logs" / f"queue-{n}.log",
                env,
                REPO_ROOT,
            )
            process.start()
            processes.append(process)
            process.wait_ready(partial(http_ready, port), 120)
            ports.append((port, process.pid or 0))
        yield ports
    finally:
        for process in processes:
            process.stop()


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


def make_sale(event_id: str) -> SaleConfig:
    """A sale open for an hour, admitting nobody faster than the line can be counted."""
    now = datetime.now(UTC)
    return SaleConfig(
        event_id=event_id,
        tps=1,
        max_active=1,
        opens_at=now - timedelta(minutes=1),
        closes_at=now + timedelta(hours=1),
        phase=Phase.ON_SALE,
    )


async def open_sale(redis_url: str) -> str:
    event_id = uuid.uuid4().hex[:8]
    client = aioredis.Redis.from_url(redis_url)
    try:
        await write_sale_config(client, PREFIX, make_sale(event_id))
    finally:
        await client.aclose()
    return event_id


def mint_tokens(count: int) -> list[tuple[str, str]]:
    """(user id, login JWT) of `count` distinct users, signed as the user service signs them."""
    settings = CommonSettings()
    tag = uuid.uuid4().hex[:8]
    users = [f"b{tag}-{n}" for n in range(count)]
    return [
        (user, issue_access_token(settings, Principal(user, f"{user}@example.org", ())))
        for user in users
    ]


# --- a lean WebSocket client ----------------------------------------------------------------


class WebSocketRefused(Exception):
    """The server answered the upgrade with something other than 101."""


def _masked_frame(opcode: int, payload: bytes = b"") -> bytes:
    # A client must mask its frames; an all-zero key is a valid mask and leaves the payload as is.
    return bytes([0x80 | opcode, 0x80 | len(payload)]) + b"\0\0\0\0" + payload


class WebSocketClient(asyncio.Protocol):
    """One client WebSocket: counts the server's text messages and the longest gap between
    two of them, answers pings; nothing else (no per-message allocation beyond the frame)."""

    def __init__(self, request: bytes) -> None:
        loop = asyncio.get_running_loop()
        self.request = request
        self.upgraded: asyncio.Future[None] = loop.create_future()
        self.first_message: asyncio.Future[bytes] = loop.create_future()
        self.closed: asyncio.Future[None] = loop.create_future()
        for future in (self.upgraded, self.first_message):
            # A refused upgrade fails both; whoever awaits one of them sees why, not the other.
            future.add_done_callback(lambda f: f.cancelled() or f.exception())
        self.transport: asyncio.Transport | None = None
        self.buffer = bytearray()
        self.handshake_done = False
        self.messages = 0
        self.last_at = 0.0
        self.max_gap = 0.0

    @classmethod
    def request_for(cls, port: int, path: str) -> bytes:
        key = base64.b64encode(os.urandom(16)).decode()
        return (
            f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nUpgrade: websocket\r\n"
            f"Connection: Upgrade\r\nSec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n\r\n"
        ).encode()

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)
        self.transport.write(self.request)

    def connection_lost(self, exc: Exception | None) -> None:
        for future in (self.upgraded, self.first_message):
            if not future.done():
                future.set_exception(ConnectionError("closed before the first message"))
        if not self.closed.done():
            self.closed.set_result(None)

    def data_received(self, data: bytes) -> None:
        self.buffer += data
        if not self.handshake_done:
            end = self.buffer.find(b"\r\n\r\n")
            if end < 0:
                return
            status_line = bytes(self.buffer[: self.buffer.find(b"\r\n")])
            del self.buffer[: end + 4]
            if not status_line.startswith(b"HTTP/1.1 101"):
                self.upgraded.set_exception(WebSocketRefused(status_line.decode(errors="replace")))
                self.close()
                return
            self.handshake_done = True
            self.upgraded.set_result(None)
        self._read_frames()

    def _read_frames(self) -> None:
        buffer = self.buffer
        while len(buffer) >= 2:
            opcode, length, offset = buffer[0] & 0x0F, buffer[1] & 0x7F, 2
            if length == 126:
                length, offset = int.from_bytes(buffer[2:4]), 4
            elif length == 127:
                length, offset = int.from_bytes(buffer[2:10]), 10
            if len(buffer) < offset + length:
                return
            payload = bytes(buffer[offset : offset + length])
            del buffer[: offset + length]
            if opcode == 0x1:
                self._message(payload)
            elif opcode == 0x9 and self.transport is not None:
                self.transport.write(_masked_frame(0xA, payload))
            elif opcode == 0x8:
                self.close()

    def _message(self, payload: bytes) -> None:
        now = time.monotonic()
        if self.messages:
            self.max_gap = max(self.max_gap, now - self.last_at)
        self.messages += 1
        self.last_at = now
        if not self.first_message.done():
            self.first_message.set_result(payload)

    def reset_gap(self) -> None:
        self.max_gap = 0.0

    def close(self) -> None:
        """Say goodbye (close frame, code 1000) and drop the connection."""
        if self.transport is not None and not self.transport.is_closing():
            self.transport.write(_masked_frame(0x8, (1000).to_bytes(2)))
            self.transport.close()


OPEN_TIMEOUT_SECONDS = 30.0


async def open_websocket(port: int, path: str, source: str) -> tuple[WebSocketClient, bytes]:
    """A joined waiting socket and its first status message."""
    loop = asyncio.get_running_loop()
    request = WebSocketClient.request_for(port, path)
    _, client = await loop.create_connection(
        lambda: WebSocketClient(request), "127.0.0.1", port, local_addr=(source, 0)
    )
    try:
        async with asyncio.timeout(OPEN_TIMEOUT_SECONDS):
            await client.upgraded
            first = await client.first_message
    except BaseException:
        client.close()
        raise
    return client, first


def ws_path(event_id: str, token: str) -> str:
    return f"/sales/{event_id}/queue/ws?access_token={token}"


# --- the client processes -------------------------------------------------------------------


@dataclass(frozen=True)
class Job:
    mode: str  # "http" or "ws"
    event_id: str
    ports: tuple[int, ...]
    connections: int
    start_at: float
    seconds: float
    repeat_share: float


@dataclass
class Outcome:
    joins: int = 0  # successful joins, repeats included
    users: int = 0  # distinct users who got a place
    errors: Counter[str] = field(default_factory=Counter)
    per_second: Counter[int] = field(default_factory=Counter)
    cpu_seconds: float = 0.0
    ran_out: bool = False


async def drive(job: Job, tokens: list[tuple[str, str]]) -> Outcome:
    """`connections` concurrent callers join as fast as the service answers, until time is up."""
    outcome = Outcome()
    fresh = iter(tokens)
    joined: list[tuple[str, str]] = []
    rng = random.Random()
    end = job.start_at + job.seconds

    def next_user() -> tuple[tuple[str, str], bool] | None:
        if joined and rng.random() < job.repeat_share:
            return rng.choice(joined), False
        user = next(fresh, None)
        if user is None:
            outcome.ran_out = True
            return None
        return user, True

    def record(user: tuple[str, str], is_new: bool) -> None:
        outcome.joins += 1
        outcome.per_second[int(time.time() - job.start_at)] += 1
        if is_new:
            outcome.users += 1
            joined.append(user)

    async def http_caller(session: aiohttp.ClientSession, url: str) -> None:
        while time.time() < end and (picked := next_user()) is not None:
            user, is_new = picked
            headers = {"Authorization": f"Bearer {user[1]}"}
            try:
                async with session.post(url, headers=headers) as reply:
                    await reply.read()
                    if reply.status == 200:
                        record(user, is_new)
                    else:
                        outcome.errors[f"HTTP {reply.status}"] += 1
            except (aiohttp.ClientError, TimeoutError) as exc:
                outcome.errors[type(exc).__name__] += 1

    async def ws_caller(index: int) -> None:
        port = job.ports[index % len(job.ports)]
        source = SOURCE_ADDRESSES[index % len(SOURCE_ADDRESSES)]
        while time.time() < end and (picked := next_user()) is not None:
            user, is_new = picked
            try:
                client, first = await open_websocket(port, ws_path(job.event_id, user[1]), source)
            except (OSError, WebSocketRefused, TimeoutError) as exc:
                outcome.errors[type(exc).__name__] += 1
                continue
            client.close()
            if json.loads(first).get("type") == "position":
                record(user, is_new)
            else:
                outcome.errors[f"status {json.loads(first).get('type')}"] += 1

    await asyncio.sleep(max(0.0, job.start_at - time.time()))
    cpu_before = time.process_time()
    if job.mode == "http":
        timeout = aiohttp.ClientTimeout(total=30)
        sessions = [
            aiohttp.ClientSession(
                connector=aiohttp.TCPConnector(limit=0, force_close=False), timeout=timeout
            )
            for _ in job.ports
        ]
        try:
            await asyncio.gather(
                *(
                    http_caller(
                        sessions[n % len(sessions)],
                        f"http://127.0.0.1:{job.ports[n % len(job.ports)]}"
                        f"/sales/{job.event_id}/queue",
                    )
                    for n in range(job.connections)
                )
            )
        finally:
            for session in sessions:
                await session.close()
    else:
        await asyncio.gather(*(ws_caller(n) for n in range(job.connections)))
    outcome.cpu_seconds = time.process_time() - cpu_before
    return outcome


def client_process(tokens_wanted: int, jobs: Connection) -> None:
    """A client process: mints its users once, then runs each job it is sent."""
    tokens = mint_tokens(tokens_wanted)
    jobs.send("ready")
    while (job := jobs.recv()) is not None:
        # Each job is a new sale, so the same users join afresh.
        jobs.send(uvloop.run(drive(job, tokens)))


@contextmanager
def client_processes(count: int, tokens_each: int) -> Iterator[list[Connection]]:
    pipes: list[Connection] = []
    processes: list[Process] = []
    try:
        for _ in range(count):
            ours, theirs = Pipe()
            process = Process(target=client_process, args=(tokens_each, theirs), daemon=True)
            process.start()
            pipes.append(ours)
            processes.append(process)
        for pipe in pipes:
            if pipe.recv() != "ready":
                raise BenchmarkFailed("a client process did not start")
        yield pipes
    finally:
        for pipe in pipes:
            pipe.send(None)
        for process in processes:
            process.join(10)


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


# --- the app alone, in this process ---------------------------------------------------------


async def app_cpu_per_join(
    redis_url: str, tokens: list[tuple[str, str]], connections: int, profiler: Profile | None
) -> float:
    """Joins by every token through the queue app called directly (ASGI: no server, no sockets,
    no client in the way): the app's own CPU a join in µs (Redis's not counted)."""
    app = create_app(
        QueueSettings(redis_url=redis_url, redis_key_prefix=PREFIX, queue_run_admission=False)
    )
    statuses: Counter[int] = Counter()

    async def receive() -> Message:
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message: Message) -> None:
        if message["type"] == "http.response.start":
            statuses[message["status"]] += 1

    async with app.router.lifespan_context(app):
        path = f"/sales/{await open_sale(redis_url)}/queue"
        pending = iter(tokens)

        async def caller() -> None:
            for _, token in pending:
                headers = [(b"host", b"bench"), (b"authorization", f"Bearer {token}".encode())]
                scope: Scope = {
                    "type": "http",
                    "asgi": {"version": "3.0"},
                    "http_version": "1.1",
                    "method": "POST",
                    "scheme": "http",
                    "path": path,
                    "raw_path": path.encode(),
                    "query_string": b"",
                    "root_path": "",
                    "headers": headers,
                    "client": ("127.0.0.1", 1),
                    "server": ("127.0.0.1", 80),
                }
                await app(scope, receive, send)

        started = time.process_time()
        if profiler is not None:
            profiler.enable()
        await asyncio.gather(*(caller() for _ in range(connections)))
        if profiler is not None:
            profiler.disable()
        cpu = time.process_time() - started
    if set(statuses) != {200}:
        raise BenchmarkFailed(f"in-process joins were answered {dict(statuses)}")
    return cpu / len(tokens) * 1e6


def profile(redis_url: str, args: argparse.Namespace) -> None:
    """The app's CPU a join, in-process (median of 3 rounds), then one round under cProfile."""
    tokens = mint_tokens(args.users or 10_000)
    figures = [
        uvloop.run(app_cpu_per_join(redis_url, tokens, args.connections, None)) for _ in range(3)
    ]
    print(
        f"queue app alone (in-process ASGI, {len(tokens):,} joins, {args.connections} at once): "
        f"{sorted(figures)[1]:,.0f} µs of CPU a join (rounds: "
        + ", ".join(f"{f:,.0f}" for f in figures)
        + f"); load {load_average():.1f}"
    )
    profiler = Profile()
    uvloop.run(app_cpu_per_join(redis_url, tokens, args.connections, profiler))
    pstats.Stats(profiler).sort_stats("cumulative").print_stats(40)


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
            profile(redis.url, args)
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
