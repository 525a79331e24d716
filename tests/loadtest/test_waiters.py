"""A waiter's WebSocket wait, against a real WebSocket server on loopback that never admits."""

import time
from collections.abc import AsyncIterator

import pytest
from ticketing_dev.ports import free_port
from websockets.asyncio.server import Server, ServerConnection, serve

from loadtest.crowd.recorder import Recorder
from loadtest.crowd.waiters import wait_on_socket


async def _never_admit(socket: ServerConnection) -> None:
    await socket.send('{"type": "position", "position": 1}')
    await socket.wait_closed()


@pytest.fixture
async def silent_line() -> AsyncIterator[Server]:
    async with serve(_never_admit, "127.0.0.1", 0) as server:
        yield server


async def test_wait_cut_by_the_run_deadline_is_not_counted_as_an_error(
    silent_line: Server,
) -> None:
    port = next(iter(silent_line.sockets)).getsockname()[1]
    recorder = Recorder()

    place = await wait_on_socket(f"ws://127.0.0.1:{port}/", recorder, time.monotonic() + 0.5)

    assert place is None
    assert recorder.errors == 0
    assert not recorder.failures
    assert recorder.positions == [1]


async def test_socket_refused_before_the_deadline_is_counted_as_an_error() -> None:
    recorder = Recorder()
    nobody = free_port()

    place = await wait_on_socket(f"ws://127.0.0.1:{nobody}/", recorder, time.monotonic() + 5)

    assert place is None
    assert recorder.errors == 1
    assert any(
        reason.startswith("waiting socket: ConnectionRefusedError") for reason in recorder.failures
    )
