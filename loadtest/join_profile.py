"""`bench_join --profile`: the queue app's own CPU a join, with no server, socket or client in the
way (the app called in-process through ASGI), and a cProfile of it.
"""

import asyncio
import pstats
import time
from collections import Counter
from cProfile import Profile

import uvloop
from starlette.types import Message, Scope
from ticketing.queue.app import create_app
from ticketing.queue.settings import QueueSettings

from loadtest.bench_common import BenchmarkFailed, load_average
from loadtest.queue_target import PREFIX, mint_tokens, open_sale


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


def profile(redis_url: str, users: int, connections: int) -> None:
    """The app's CPU a join by each of `users` users, `connections` at once, in-process (median of
    3 rounds), then one round under cProfile."""
    tokens = mint_tokens(users)
    figures = [uvloop.run(app_cpu_per_join(redis_url, tokens, connections, None)) for _ in range(3)]
    print(
        f"queue app alone (in-process ASGI, {len(tokens):,} joins, {connections} at once): "
        f"{sorted(figures)[1]:,.0f} µs of CPU a join (rounds: "
        + ", ".join(f"{f:,.0f}" for f in figures)
        + f"); load {load_average():.1f}"
    )
    profiler = Profile()
    uvloop.run(app_cpu_per_join(redis_url, tokens, connections, profiler))
    pstats.Stats(profiler).sort_stats("cumulative").print_stats(40)
