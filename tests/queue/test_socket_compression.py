"""The queue service as `python -m ticketing queue` starts it declines browsers' offer to compress
its sockets (a zlib context per waiting socket would double its memory), and still talks."""

import asyncio
import json
import sys
from collections.abc import Iterator
from functools import partial
from pathlib import Path

import pytest
import redis.asyncio as aioredis
import websockets
from ticketing.common.settings import CommonSettings
from ticketing.queue.store import SaleQueue
from ticketing_dev.ports import free_port
from ticketing_dev.process import ManagedProcess, http_ready

from .factories import publish_sale
from .server import login_token


@pytest.fixture
def queue_process(settings: CommonSettings, tmp_path: Path) -> Iterator[int]:
    """The port of a queue service started as the chart starts it."""
    port = free_port()
    process = ManagedProcess(
        "queue",
        [sys.executable, "-m", "ticketing", "queue", "--port", str(port)],
        tmp_path / "queue.log",
        {
            "TICKETING_REDIS_URL": settings.redis_url,
            "TICKETING_REDIS_KEY_PREFIX": settings.redis_key_prefix,
            "TICKETING_QUEUE_RUN_ADMISSION": "false",
        },
    )
    process.start()
    try:
        process.wait_ready(partial(http_ready, port), 60)
        yield port
    finally:
        process.stop()


async def test_socket_declines_compression_offered_by_the_browser_and_sends_positions(
    queue_process: int, settings: CommonSettings, queue: SaleQueue, redis_client: aioredis.Redis
) -> None:
    await publish_sale(redis_client, queue, paused=True)
    token = login_token(settings, "frank")
    url = f"ws://127.0.0.1:{queue_process}/sales/{queue.event_id}/queue/ws?access_token={token}"
    # The client offers permessage-deflate, as browsers do.
    async with websockets.connect(url, compression="deflate") as socket:
        async with asyncio.timeout(10):
            message = json.loads(await socket.recv())
        assert socket.response is not None
        assert socket.response.headers.get("Sec-WebSocket-Extensions") is None
    assert message["type"] == "position"
    assert message["position"] == 1
