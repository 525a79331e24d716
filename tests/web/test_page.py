"""The web page in a real headless Chromium: join the line, watch the position fall, get admitted."""

import asyncio
import contextlib
from pathlib import Path

import pytest
import redis.asyncio as aioredis
from playwright.async_api import Browser
from ticketing.common.sale_config import write_sale_config
from ticketing.common.settings import CommonSettings
from ticketing.queue.store import SaleQueue

from ..queue.factories import make_queue_settings, publish_sale
from ..queue.server import login_token, running_queue_service
from .conftest import keep_screenshots

pytestmark = pytest.mark.slow


async def keep_present(queue: SaleQueue, users: list[str]) -> None:
    """The people ahead keep their sockets open: their heartbeats go on."""
    while True:
        await queue.touch(users)
        await asyncio.sleep(0.5)


async def test_page_joins_watches_position_fall_and_is_admitted(
    browser: Browser,
    settings: CommonSettings,
    redis_client: aioredis.Redis,
    tmp_path: Path,
) -> None:
    queue_settings = make_queue_settings(settings, queue_push_interval_seconds=0.25)
    queue = SaleQueue(redis_client, queue_settings.redis_key_prefix, "spring-concert")
    sale = await publish_sale(
        redis_client, queue, tps=2, message="Doors open at 19:00", paused=True
    )
    ahead = [f"ahead-{n}" for n in range(5)]
    for user in ahead:
        await queue.join(user, sale)
    presence = asyncio.create_task(keep_present(queue, ahead))
    try:
        async with running_queue_service(queue_settings) as base:
            page = await browser.new_page()
            token = login_token(queue_settings, "browser-user")
            await page.goto(f"{base}/app/?sale=spring-concert#token={token}")
            await page.click("#join")
            positions: list[int] = []
            async with asyncio.timeout(20):
                while not await page.is_visible("#seats-step"):
                    text = (await page.text_content("#position") or "").strip()
                    if text.isdigit() and (not positions or positions[-1] != int(text)):
                        positions.append(int(text))
                        if len(positions) == 1:
                            await page.screenshot(path=tmp_path / "waiting.png")
                            # The operator resumes admission once the page shows its place.
                            resumed = sale.model_copy(update={"paused": False})
                            await write_sale_config(redis_client, queue.keys.prefix, resumed)
                    await asyncio.sleep(0.1)
            assert await page.text_content("#notice") == "Doors open at 19:00"
            await page.screenshot(path=tmp_path / "admitted.png")
    finally:
        presence.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await presence
    assert positions[0] == 6
    assert positions == sorted(positions, reverse=True)
    assert len(positions) >= 3
    keep_screenshots(tmp_path)
