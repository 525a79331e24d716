"""The client processes of `bench_sockets`: each holds its share of the waiting sockets open and
reports, for each watch window it is sent, every socket's longest gap between two messages.

One process cannot open more than the open-file limit (20,000 here), and reading 50,000 sockets'
messages takes more than one core with the `websockets` client, so the crowd is split over
processes. Each mints its own users, opens its sockets (each to one of the queue services, from
one of several loopback source addresses, by its index in the whole crowd) and keeps one
reading task a socket.
"""

import asyncio
import contextlib
import time
from collections import Counter
from dataclasses import dataclass, field
from multiprocessing.connection import Connection

import uvloop
from websockets.asyncio.client import ClientConnection
from websockets.exceptions import ConnectionClosed, WebSocketException

from loadtest.bench_common import raise_file_limit
from loadtest.queue_target import SOURCE_ADDRESSES, mint_tokens, open_waiting_socket


@dataclass(frozen=True)
class Share:
    """What one client process opens: sockets `first` to `first + size - 1` of the crowd."""

    ports: tuple[int, ...]
    event_id: str
    first: int
    size: int
    opening: int  # sockets opening at once
    offer_deflate: bool


@dataclass(frozen=True)
class Grow:
    sockets: int  # this process's total after the step


@dataclass(frozen=True)
class Watch:
    seconds: float


@dataclass
class Grown:
    sockets: int
    failures: Counter[str] = field(default_factory=Counter)


@dataclass
class Watched:
    gaps: list[float]  # each socket's longest gap in the window; a closed socket's is infinite
    messages: int
    cpu_seconds: float
    seconds: float  # the window as it passed here: longer than asked when this process lagged


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
            while True:
                await self.connection.recv(decode=False)
                now = time.monotonic()
                self.max_gap = max(self.max_gap, now - self.last_at)
                self.messages += 1
                self.last_at = now

    def gap(self, now: float) -> float:
        """The longest wait since the last reset, counting the wait since the last message."""
        if self.watching.done():
            return float("inf")
        return max(self.max_gap, now - self.last_at)


class Crowd:
    """One process's share of the waiting sockets, opened a bounded number at a time."""

    def __init__(self, share: Share, tokens: list[tuple[str, str]]) -> None:
        self.share = share
        self.tokens = tokens
        self.gate = asyncio.Semaphore(share.opening)
        self.sockets: list[WatchedSocket] = []
        self.failures: Counter[str] = Counter()

    async def _open_one(self, index: int) -> None:
        crowd_index = self.share.first + index
        port = self.share.ports[crowd_index % len(self.share.ports)]
        source = SOURCE_ADDRESSES[crowd_index % len(SOURCE_ADDRESSES)]
        async with self.gate:
            try:
                connection, _ = await open_waiting_socket(
                    port,
                    self.share.event_id,
                    self.tokens[index][1],
                    source,
                    offer_deflate=self.share.offer_deflate,
                )
            except (OSError, WebSocketException) as exc:
                self.failures[f"{type(exc).__name__}: {exc}"[:80]] += 1
                return
            self.sockets.append(WatchedSocket(connection))

    async def grow(self, command: Grow) -> Grown:
        start = len(self.sockets) + self.failures.total()
        await asyncio.gather(*(self._open_one(n) for n in range(start, command.sockets)))
        return Grown(len(self.sockets), self.failures.copy())

    async def watch(self, command: Watch) -> Watched:
        for socket in self.sockets:
            socket.max_gap = 0.0
        messages = sum(s.messages for s in self.sockets)
        cpu, started = time.process_time(), time.monotonic()
        await asyncio.sleep(command.seconds)
        now = time.monotonic()
        return Watched(
            gaps=[s.gap(now) for s in self.sockets],
            messages=sum(s.messages for s in self.sockets) - messages,
            cpu_seconds=time.process_time() - cpu,
            seconds=now - started,
        )

    async def close(self) -> None:
        await asyncio.gather(*(s.connection.close() for s in self.sockets))


async def _serve(share: Share, pipe: Connection) -> None:
    crowd = Crowd(share, mint_tokens(share.size))
    pipe.send("ready")
    loop = asyncio.get_running_loop()
    try:
        while (command := await loop.run_in_executor(None, pipe.recv)) is not None:
            pipe.send(
                await (crowd.grow(command) if isinstance(command, Grow) else crowd.watch(command))
            )
    finally:
        await crowd.close()


def crowd_process(share: Share, pipe: Connection) -> None:
    raise_file_limit(share.size + 1_000)
    uvloop.run(_serve(share, pipe))
