"""The queue service that `bench_join` and `bench_sockets` measure, and how their clients reach it:
real `python -m ticketing queue` processes (and `bench_join`'s bare endpoint beside them) on a
Redis of their own, a sale open on them, users signed in as the user service signs them, and a
waiting WebSocket opened with the `websockets` client from one of several loopback source
addresses.
"""

import asyncio
import sys
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from functools import partial
from pathlib import Path

import redis.asyncio as aioredis
from ticketing.common.sale_config import Phase, SaleConfig, write_sale_config
from ticketing.common.settings import CommonSettings
from ticketing.common.tokens import Principal, issue_access_token
from ticketing_dev.ports import free_port
from ticketing_dev.process import ManagedProcess, http_ready
from websockets.asyncio.client import ClientConnection, connect

PREFIX = "bench"
REPO_ROOT = Path(__file__).resolve().parents[1]
# Loopback source addresses: each gives its own ~28k ephemeral ports towards one server port.
SOURCE_ADDRESSES = [f"127.0.0.{n}" for n in range(2, 10)]
OPEN_TIMEOUT_SECONDS = 30.0


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
    with _http_processes(
        "queue", [sys.executable, "-m", "ticketing", "queue"], directory, env, count, "/readyz"
    ) as servers:
        yield servers


@contextmanager
def bare_services(directory: Path, count: int) -> Iterator[list[tuple[int, int]]]:
    """`count` processes of `loadtest.bare_endpoint`, served as the queue service is."""
    with _http_processes(
        "bare", [sys.executable, "-m", "loadtest.bare_endpoint"], directory, {}, count, "/healthz"
    ) as servers:
        yield servers


@contextmanager
def _http_processes(
    name: str, argv: list[str], directory: Path, env: dict[str, str], count: int, probe: str
) -> Iterator[list[tuple[int, int]]]:
    processes: list[ManagedProcess] = []
    ports: list[tuple[int, int]] = []
    try:
        for n in range(count):
            port = free_port()
            process = ManagedProcess(
                f"{name}-{n}",
                [*argv, "--port", str(port)],
                directory / "logs" / f"{name}-{n}.log",
                env,
                REPO_ROOT,
            )
            process.start()
            processes.append(process)
            process.wait_ready(partial(http_ready, port, probe), 120)
            ports.append((port, process.pid or 0))
        yield ports
    finally:
        for process in processes:
            process.stop()


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


async def open_waiting_socket(
    port: int, event_id: str, token: str, source: str, *, offer_deflate: bool
) -> tuple[ClientConnection, str]:
    """A joined waiting socket and its first status message. With `offer_deflate` the handshake
    offers permessage-deflate as every browser's does. The client sends no pings of its own
    (it answers the server's), and it never goes through a proxy: the service is on loopback."""
    connection = await connect(
        f"ws://127.0.0.1:{port}/sales/{event_id}/queue/ws?access_token={token}",
        compression="deflate" if offer_deflate else None,
        proxy=None,
        open_timeout=OPEN_TIMEOUT_SECONDS,
        ping_interval=None,
        local_addr=(source, 0),
    )
    try:
        async with asyncio.timeout(OPEN_TIMEOUT_SECONDS):
            first = await connection.recv(decode=True)
    except BaseException:
        await connection.close()
        raise
    return connection, first
