"""Fixtures of the web tests: Debian's Chromium driven by Playwright, and where screenshots go."""

import shutil
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from playwright.async_api import Browser, async_playwright

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
ARTIFACTS = Path(__file__).parent / "artifacts"


@pytest.fixture
def chromium_path() -> str:
    assert CHROMIUM.exists(), "Chromium is missing: run scripts/install/debian.sh"
    return str(CHROMIUM)


@pytest.fixture
async def browser(chromium_path: str) -> AsyncIterator[Browser]:
    async with async_playwright() as playwright:
        chromium = await playwright.chromium.launch(
            executable_path=chromium_path, args=CHROMIUM_ARGS
        )
        try:
            yield chromium
        finally:
            await chromium.close()


def keep_screenshots(directory: Path) -> None:
    """Copy the screenshots where CI and people look for them (tests/web/artifacts/)."""
    ARTIFACTS.mkdir(exist_ok=True)
    for shot in directory.glob("*.png"):
        shutil.copy(shot, ARTIFACTS / shot.name)
