"""Joining too often, over HTTP or by opening WebSockets, is refused with 429 and Retry-After."""

import asyncio
from collections.abc import AsyncIterator

import httpx
import pytest
import redis.asyncio as aioredis
import websockets
from ticketing.common.settings import CommonSettings
from ticketing.queue.settings import QueueSettings
from ticketing.queue.store import SaleQueue
from websockets.exceptions import InvalidStatus

from .factories import make_queue_settings, publish_sale
from .server import login_token, running_queue_service

ALLOWED = 3
WINDOW_SECONDS = 2.0


@pytest.fixture
async def service(settings: CommonSettings) -> AsyncIterator[tuple[str, QueueSettings]]:
    queue_settings = make_queue_settings(
        settings,
        queue_join_rate_limit=ALLOWED,
        queue_socket_rate_limit=ALLOWED,
        queue_rate_window_seconds=WINDOW_SECONDS,
    )
    async with running_queue_service(queue_settings) as base:
        yield base, queue_settings


async def join(
    base: str, settings: CommonSettings, user: str, event: str = "spring-concert"
) -> httpx.Response:
    headers = {"Authorization": f"Bearer {login_token(settings, user)}"}
    async with httpx.AsyncClient(base_url=base, headers=headers) as client:
        return await client.post(f"/sales/{event}/queue")


def ws_url(base: str, settings: CommonSettings, user: str) -> str:
    token = login_token(settings, user)
    return f"{base.replace('http', 'ws')}/sales/spring-concert/queue/ws?access_token={token}"


async def test_http_join_over_the_limit_gets_429_with_retry_after_while_others_join(
    service: tuple[str, QueueSettings], queue: SaleQueue, redis_client: aioredis.Redis
) -> None:
    base, settings = service
    await publish_sale(redis_client, queue, paused=True)
    for _ in range(ALLOWED):
        assert (await join(base, settings, "gina")).status_code == 200

    refused = await join(base, settings, "gina")

    assert refused.status_code == 429
    wait = refused.headers["Retry-After"]
    assert wait in {"1", "2"}
    assert refused.json()["detail"] == f"too many joins: try again in {wait} s"
    assert (await join(base, settings, "hank")).status_code == 200


async def test_http_join_limit_is_per_sale_and_ends_with_its_window(
    service: tuple[str, QueueSettings], queue: SaleQueue, redis_client: aioredis.Redis
) -> None:
    base, settings = service
    await publish_sale(redis_client, queue, paused=True)
    other = SaleQueue(redis_client, settings.redis_key_prefix, "autumn-concert")
    await publish_sale(redis_client, other, paused=True)
    for _ in range(ALLOWED + 1):
        await join(base, settings, "ivan")

    assert (await join(base, settings, "ivan")).status_code == 429
    assert (await join(base, settings, "ivan", "autumn-concert")).status_code == 200
    await asyncio.sleep(WINDOW_SECONDS)
    assert (await join(base, settings, "ivan")).status_code == 200


async def test_socket_connects_over_the_limit_are_refused_with_429_before_the_upgrade(
    service: tuple[str, QueueSettings], queue: SaleQueue, redis_client: aioredis.Redis
) -> None:
    base, settings = service
    await publish_sale(redis_client, queue, paused=True)
    for _ in range(ALLOWED):
        async with websockets.connect(ws_url(base, settings, "jill")) as socket:
            await socket.recv()

    with pytest.raises(InvalidStatus) as refused:
        async with websockets.connect(ws_url(base, settings, "jill")):
            pass

    response = refused.value.response
    assert response.status_code == 429
    wait = response.headers["Retry-After"]
    assert f"too many connections: try again in {wait} s" in response.body.decode()
    async with websockets.connect(ws_url(base, settings, "kate")) as socket:
        assert "position" in (await socket.recv())
