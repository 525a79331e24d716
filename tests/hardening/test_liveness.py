"""Liveness that means alive, in real processes: when a background loop stops finishing rounds,
/healthz fails naming it (so the kubelet restarts the pod), and passes again once the loop runs.

The loops are wedged for real: Redis is paused (`CLIENT PAUSE ... ALL`), so each loop that
reads Redis waits on its socket, as it would on a server that hangs without closing the
connection. The HTTP server of the same process keeps answering throughout.
"""

import asyncio
import time
from collections.abc import Callable
from pathlib import Path

import httpx
import pytest
import redis.asyncio as aioredis
from ticketing.common.settings import CommonSettings

from tests.hardening.platform import service_env
from tests.service_processes import ServiceProcess

pytestmark = pytest.mark.slow

# A loop that has not finished a round for this long (plus its interval) fails /healthz.
LIVENESS_SECONDS = 1
PAUSE_SECONDS = 12


async def _healthz_until(
    client: httpx.AsyncClient, url: str, done: Callable[[httpx.Response], bool], deadline: float
) -> httpx.Response:
    while not done(response := await client.get(url)):
        if time.monotonic() > deadline:
            raise AssertionError(f"{url} still answers {response.status_code}: {response.text}")
        await asyncio.sleep(0.2)
    return response


@pytest.mark.parametrize(
    ("command", "loop"),
    [
        ("reservation", "expiry_sweeper"),
        ("queue", "queue_admission"),
        ("retry-worker", "retry_worker"),
    ],
)
async def test_a_wedged_loop_fails_liveness_naming_it_and_passes_again_once_it_runs(
    command: str,
    loop: str,
    settings: CommonSettings,
    migrated_database: str,
    redis_client: aioredis.Redis,
    tmp_path: Path,
) -> None:
    process = ServiceProcess(
        command,
        {**service_env(settings), "TICKETING_LIVENESS_SECONDS": str(LIVENESS_SECONDS)},
        tmp_path,
    )
    process.start()
    paused_until = 0.0
    try:
        await asyncio.to_thread(process.wait_ready)
        healthz = f"{process.base_url}/healthz"
        async with httpx.AsyncClient(timeout=5) as client:
            assert (await client.get(healthz)).json() == {"status": "ok"}

            await redis_client.execute_command("CLIENT", "PAUSE", PAUSE_SECONDS * 1000, "ALL")
            paused_until = time.monotonic() + PAUSE_SECONDS
            # Other loops may be late too (a consumer's first group join can take longer than
            # this test's short period): the wedged one must be among them.
            stuck = await _healthz_until(
                client,
                healthz,
                lambda r: r.status_code == 503 and loop in r.json()["late"],
                paused_until,
            )
            # The process itself answers: it is the loop that is stuck.
            assert (await client.get(f"{process.base_url}/metrics")).status_code == 200
            await asyncio.sleep(paused_until - time.monotonic())  # Redis answers again
            recovered = await _healthz_until(
                client, healthz, lambda r: r.status_code == 200, paused_until + 30
            )
    finally:
        process.process.stop()
        # The next test must find Redis answering, whatever happened here.
        await asyncio.sleep(max(0.0, paused_until - time.monotonic()))

    assert stuck.json()["status"] == "stuck"
    assert recovered.json() == {"status": "ok"}
