"""The client processes of `bench_join`: each mints its users once, then for each job it is sent
joins a sale as fast as the queue services answer, over HTTP (aiohttp, keep-alive) or WebSocket
(the `websockets` client: connect, first status, close), and reports what it got and the CPU it
used.
"""

import asyncio
import json
import random
import time
from collections import Counter
from dataclasses import dataclass, field
from multiprocessing.connection import Connection

import aiohttp
import uvloop
from websockets.exceptions import WebSocketException

from loadtest.queue_target import SOURCE_ADDRESSES, mint_tokens, open_waiting_socket


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
    latencies_ms: list[float] = field(default_factory=list)  # of each successful join
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

    def record(user: tuple[str, str], is_new: bool, started: float) -> None:
        outcome.latencies_ms.append((time.perf_counter() - started) * 1000)
        outcome.joins += 1
        outcome.per_second[int(time.time() - job.start_at)] += 1
        if is_new:
            outcome.users += 1
            joined.append(user)

    async def http_caller(session: aiohttp.ClientSession, url: str) -> None:
        while time.time() < end and (picked := next_user()) is not None:
            user, is_new = picked
            headers = {"Authorization": f"Bearer {user[1]}"}
            started = time.perf_counter()
            try:
                async with session.post(url, headers=headers) as reply:
                    await reply.read()
                    if reply.status == 200:
                        record(user, is_new, started)
                    else:
                        outcome.errors[f"HTTP {reply.status}"] += 1
            except (aiohttp.ClientError, TimeoutError) as exc:
                outcome.errors[type(exc).__name__] += 1

    async def ws_caller(index: int) -> None:
        port = job.ports[index % len(job.ports)]
        source = SOURCE_ADDRESSES[index % len(SOURCE_ADDRESSES)]
        while time.time() < end and (picked := next_user()) is not None:
            user, is_new = picked
            started = time.perf_counter()
            try:
                socket, first = await open_waiting_socket(
                    port, job.event_id, user[1], source, offer_deflate=False
                )
            except (OSError, WebSocketException) as exc:
                outcome.errors[type(exc).__name__] += 1
                continue
            await socket.close()
            status = json.loads(first).get("type")
            if status == "position":
                record(user, is_new, started)
            else:
                outcome.errors[f"status {status}"] += 1

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
