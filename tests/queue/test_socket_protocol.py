"""The waiting-room socket's protocol is total: every frame a client sends is a known command or
is answered, with an error message while the socket can stay open, or with a close frame that
has a code and a reason; each refusal is one WARNING line, and nothing is logged at ERROR or with
a traceback. Against the queue service run by uvicorn on the real Redis."""

import asyncio
import json
import logging
from collections.abc import AsyncIterator

import pytest
import redis.asyncio as aioredis
import websockets
from ticketing.common.settings import CommonSettings
from ticketing.queue.commands import MAX_COMMAND_CHARS, MAX_REFUSALS
from ticketing.queue.store import SaleQueue
from websockets.asyncio.client import ClientConnection
from websockets.exceptions import ConnectionClosed

from .factories import make_queue_settings, publish_sale
from .server import login_token, running_queue_service

# A bound on waiting for an answer, so that a server that never answers fails the test instead of
# hanging it; answers come within milliseconds.
ANSWER_WITHIN_SECONDS = 30


@pytest.fixture
async def socket_url(
    settings: CommonSettings, queue: SaleQueue, redis_client: aioredis.Redis
) -> AsyncIterator[str]:
    queue_settings = make_queue_settings(settings)
    # Paused: the user stays in line, so the socket stays a waiting one for the whole test.
    await publish_sale(redis_client, queue, paused=True)
    token = login_token(queue_settings, "nora")
    async with running_queue_service(queue_settings) as base:
        yield f"{base.replace('http', 'ws')}/sales/{queue.event_id}/queue/ws?access_token={token}"


async def next_error(socket: ClientConnection) -> str:
    """The reason of the next error message, past the position updates the hub pushes."""
    async with asyncio.timeout(ANSWER_WITHIN_SECONDS):
        while True:
            message = json.loads(await socket.recv())
            if message["type"] == "error":
                reason: str = message["reason"]
                return reason


async def closed_with(socket: ClientConnection) -> tuple[int, str]:
    with pytest.raises(ConnectionClosed) as closed:
        async with asyncio.timeout(ANSWER_WITHIN_SECONDS):
            while True:
                await socket.recv()
    received = closed.value.rcvd
    assert received is not None, "the server closed without a close frame"
    return received.code, received.reason


def refusal_lines(caplog: pytest.LogCaptureFixture) -> list[logging.LogRecord]:
    return [r for r in caplog.records if r.name == "ticketing.queue.socket"]


def assert_nothing_logged_at_error_or_with_a_traceback(caplog: pytest.LogCaptureFixture) -> None:
    bad = [r for r in caplog.records if r.levelno >= logging.ERROR or r.exc_info]
    assert bad == [], [f"{r.name}: {r.getMessage()}" for r in bad]


@pytest.mark.parametrize(
    ("frame", "reason"),
    [
        pytest.param("[1, 2]", 'a command is a JSON object with a "type"', id="json-list"),
        pytest.param("5", 'a command is a JSON object with a "type"', id="json-number"),
        pytest.param('{"kind": "leave"}', 'a command is a JSON object with a "type"', id="no-type"),
        pytest.param("leave please", "not JSON", id="not-json"),
        pytest.param('{"type": "dance"}', "unknown command 'dance'", id="unknown-command"),
    ],
)
async def test_text_that_is_no_command_is_answered_and_the_socket_goes_on(
    socket_url: str, caplog: pytest.LogCaptureFixture, frame: str, reason: str
) -> None:
    caplog.set_level(logging.INFO)
    async with websockets.connect(socket_url) as socket:
        await socket.send(frame)
        assert (await next_error(socket)).startswith(reason)

        await socket.send(json.dumps({"type": "leave"}))
        assert await closed_with(socket) == (1000, "")

    [line] = refusal_lines(caplog)
    assert line.levelno == logging.WARNING
    assert_nothing_logged_at_error_or_with_a_traceback(caplog)


@pytest.mark.parametrize(
    ("frame", "code", "reason"),
    [
        pytest.param(b"\x00\x01", 1003, "binary frames are not accepted", id="binary"),
        pytest.param(
            "x" * (2 * 1024 * 1024), 1009, f"at most {MAX_COMMAND_CHARS} characters", id="2-mib"
        ),
    ],
)
async def test_a_frame_that_cannot_be_a_command_closes_the_socket_with_a_code_and_reason(
    socket_url: str, caplog: pytest.LogCaptureFixture, frame: str | bytes, code: int, reason: str
) -> None:
    caplog.set_level(logging.INFO)
    async with websockets.connect(socket_url) as socket:
        await socket.send(frame)
        received_code, received_reason = await closed_with(socket)

    assert received_code == code
    assert reason in received_reason
    [line] = refusal_lines(caplog)
    assert line.levelno == logging.WARNING
    assert_nothing_logged_at_error_or_with_a_traceback(caplog)


async def test_a_client_that_keeps_sending_junk_is_closed_for_policy(
    socket_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO)
    async with websockets.connect(socket_url) as socket:
        for _ in range(MAX_REFUSALS):
            await socket.send("junk")
            assert (await next_error(socket)).startswith("not JSON")
        await socket.send("junk")
        code, reason = await closed_with(socket)

    assert (code, reason) == (1008, f"more than {MAX_REFUSALS} messages that are no command")
    assert len(refusal_lines(caplog)) == MAX_REFUSALS + 1
    assert_nothing_logged_at_error_or_with_a_traceback(caplog)
