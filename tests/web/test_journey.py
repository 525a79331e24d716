"""The whole journey in a real headless Chromium, through the gateway to the real services:
sign up, join the line, get admitted, pick two seats, hold them, pay, see the ticket."""

from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest
import redis.asyncio as aioredis
from playwright.async_api import Browser, Page, expect
from ticketing.common.db import make_engine
from ticketing.common.sale_config import write_sale_config
from ticketing.common.settings import CommonSettings

from ..core.factories import admin_token, bearer, event_body, venue_body
from ..core.sale_kit import seat_states, tickets_by_seat
from ..queue.factories import make_sale
from .conftest import keep_screenshots
from .platform import running_platform

pytestmark = pytest.mark.slow

EVENT = "web-journey"
SEATS = ["r1-s2", "r1-s3"]
# Generous: on a loaded two-core machine a step (a Kafka round trip, argon2) can take seconds.
STEP_MS = 20_000


@pytest.fixture
async def gateway(settings: CommonSettings, database_url: str) -> AsyncIterator[str]:
    """The gateway in front of the platform, on this test's own (created) database."""
    async with running_platform(settings) as url:
        yield url


async def open_sale(gateway: str, settings: CommonSettings, redis: aioredis.Redis) -> None:
    """What an organiser and the operator do: a venue, an event, its seats, the sale paused."""
    async with httpx.AsyncClient(
        base_url=gateway, headers=bearer(admin_token(settings)), trust_env=False, timeout=30
    ) as admin:
        for response in [
            await admin.put("/venues/main-hall", json=venue_body()),
            await admin.put(f"/events/{EVENT}", json=event_body("main-hall")),
            await admin.post(f"/events/{EVENT}/inventory"),
        ]:
            assert response.is_success, response.text
    sale = make_sale(EVENT, tps=100, paused=True, message="Welcome to the web journey")
    await write_sale_config(redis, settings.redis_key_prefix, sale)


async def resume_sale(settings: CommonSettings, redis: aioredis.Redis) -> None:
    sale = make_sale(EVENT, tps=100, message="Welcome to the web journey")
    await write_sale_config(redis, settings.redis_key_prefix, sale)


async def shot(page: Page, directory: Path, name: str) -> None:
    await page.screenshot(path=directory / f"journey-{name}.png", full_page=True)


async def test_page_takes_a_new_user_from_sign_up_to_a_confirmed_ticket(
    browser: Browser,
    gateway: str,
    settings: CommonSettings,
    redis_client: aioredis.Redis,
    tmp_path: Path,
) -> None:
    await open_sale(gateway, settings, redis_client)
    page = await browser.new_page()
    await page.goto(f"{gateway}/app/?sale={EVENT}")
    await page.fill("#email", "web-fan@example.org")
    await page.fill("#password", "correct horse battery staple")
    await shot(page, tmp_path, "1-sign-up")

    await page.click("#sign-up")
    await expect(page.locator("#join")).to_be_visible(timeout=STEP_MS)
    await page.click("#join")
    await expect(page.locator("#position")).to_have_text("1", timeout=STEP_MS)
    await expect(page.locator("#ahead")).to_have_text("0")
    await expect(page.locator("#notice")).to_have_text("Welcome to the web journey")
    await shot(page, tmp_path, "2-waiting")

    await resume_sale(settings, redis_client)
    await expect(page.locator("#admitted")).to_have_text("You are admitted.", timeout=STEP_MS)
    seat_map = page.locator("#seat-map button")
    await expect(seat_map).to_have_count(20, timeout=STEP_MS)
    for seat in SEATS:
        await page.click(f"#seat-map button:text-is('{seat}')")
    await expect(page.locator("#seat-map button.chosen")).to_have_text(SEATS)
    await shot(page, tmp_path, "3-seats")

    await page.click("#reserve")
    await expect(page.locator("#held")).to_have_text(", ".join(SEATS), timeout=STEP_MS)
    await shot(page, tmp_path, "4-held")

    await page.click("#pay")
    await expect(page.locator("#ticket-status")).to_have_text("Confirmed", timeout=STEP_MS)
    await expect(page.locator("#ticket-event")).to_have_text(EVENT)
    await expect(page.locator("#ticket-seats")).to_have_text(", ".join(SEATS))
    await shot(page, tmp_path, "5-ticket")
    keep_screenshots(tmp_path)

    reservation = (await page.text_content("#ticket-id") or "").strip()
    states = await seat_states(redis_client, settings.redis_key_prefix, EVENT)
    assert {seat: states[seat] for seat in SEATS} == {seat: f"sold:{reservation}" for seat in SEATS}
    assert sum(state.startswith("sold:") for state in states.values()) == len(SEATS)
    engine = make_engine(settings.database_url)
    try:
        assert await tickets_by_seat(engine, EVENT) == {seat: [reservation] for seat in SEATS}
    finally:
        await engine.dispose()
