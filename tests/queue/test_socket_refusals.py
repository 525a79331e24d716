"""A WebSocket join refused before the upgrade: the handshake gets the HTTP route's status and
reason instead of the upgrade, and nobody joins."""

import json
import logging
from collections.abc import AsyncIterator

import pytest
import redis.asyncio as aioredis
import websockets
from ticketing.common.settings import CommonSettings
from ticketing.queue.settings import QueueSettings
from ticketing.queue.store import SaleQueue
from websockets.exceptions import InvalidStatus

from .factories import make_queue_settings, publish_sale
from .server import login_token, running_queue_service


@pytest.fixture
async def service(settings: CommonSettings) -> AsyncIterator[tuple[str, QueueSettings]]:
    queue_settings = make_queue_settings(settings)
    async with running_queue_service(queue_settings) as base:
        yield base.replace("http", "ws"), queue_settings


async def refused_handshake(url: str) -> tuple[int, str]:
    with pytest.raises(InvalidStatus) as refused:
        async with websockets.connect(url):
            pass
    response = refused.value.response
    return response.status_code, json.loads(response.body or b"{}")["detail"]


@pytest.mark.parametrize(
    "event_id",
    [
        pytest.param("no-such-sale", id="unknown"),
        pytest.param("x" * 100, id="longest-unknown"),
        pytest.param("x" * 101, id="too-long"),
        pytest.param("{spring}", id="hash-tag"),
    ],
)
async def test_socket_for_a_sale_nobody_configured_is_refused(
    service: tuple[str, QueueSettings], event_id: str
) -> None:
    base, settings = service
    token = login_token(settings, "lena")

    status, reason = await refused_handshake(
        f"{base}/sales/{event_id}/queue/ws?access_token={token}"
    )

    assert status == 404
    assert reason == f"no sale {event_id!r} is configured"


@pytest.mark.parametrize(
    "query", [pytest.param("", id="no-token"), pytest.param("?access_token=forged", id="forged")]
)
async def test_socket_without_a_valid_login_is_refused_and_joins_nobody(
    service: tuple[str, QueueSettings],
    queue: SaleQueue,
    redis_client: aioredis.Redis,
    query: str,
) -> None:
    base, _ = service
    await publish_sale(redis_client, queue)

    status, reason = await refused_handshake(f"{base}/sales/{queue.event_id}/queue/ws{query}")

    assert status == 401
    assert reason
    assert await redis_client.zcard(queue.keys.waiting) == 0


async def test_a_refused_handshake_logs_nothing_at_error(
    service: tuple[str, QueueSettings],
    queue: SaleQueue,
    redis_client: aioredis.Redis,
    caplog: pytest.LogCaptureFixture,
) -> None:
    base, settings = service
    await publish_sale(redis_client, queue)
    token = login_token(settings, "mona")
    caplog.set_level(logging.DEBUG)

    for url in (
        f"{base}/sales/{queue.event_id}/queue/ws",
        f"{base}/sales/no-such-sale/queue/ws?access_token={token}",
    ):
        await refused_handshake(url)

    errors = [r for r in caplog.records if r.levelno >= logging.ERROR]
    assert errors == [], [f"{r.name}: {r.getMessage()}" for r in errors]
    refusals = [r.getMessage() for r in caplog.records if r.name == "ticketing.http"]
    assert refusals == [
        "websocket handshake refused with 401",
        "websocket handshake refused with 404",
    ]
