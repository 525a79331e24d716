"""The Locust buyers, run the way a person runs them: `locust --headless` in its own process,
against the real platform's gateway, and against nothing for the run's own refusals."""

import asyncio
import os
import subprocess
import sys
from pathlib import Path

import pytest
from ticketing_dev.ports import free_port

from loadtest.crowd.recorder import SEEN_RESERVATIONS
from loadtest.platform import Platform
from loadtest.sale import audit, sale_on
from loadtest.scenarios import scenario
from tests.loadtest.whole_sale import sale_figures, whole_sale

LOCUSTFILE = Path(__file__).resolve().parents[2] / "loadtest" / "crowd" / "locustfile.py"
# Locust's own start (imports, a busy machine) on top of the run's bound.
START_SECONDS = 120


def _locust(host: str, timeout: float, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [
            str(Path(sys.executable).with_name("locust")),
            "-f",
            str(LOCUSTFILE),
            "--headless",
            "--only-summary",
            "--host",
            host,
        ],
        env={**os.environ, "LOADTEST_SCENARIO": "smoke", **env},
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


@pytest.mark.slow
@pytest.mark.timeout(600)
async def test_locust_sells_every_seat_of_the_smoke_sale_once_and_loses_no_reservation(
    sale_platform: Platform, tmp_path: Path
) -> None:
    # Locust's users are the smoke ramp's 300 people for 50 seats; the run ends when every
    # visit is over. Its exit code is not asserted: the latency thresholds measure the machine.
    sale = scenario("smoke")
    given = tmp_path / "reservations.json"

    async with sale_on(sale_platform, sale, print):
        locust = await asyncio.to_thread(
            _locust,
            sale_platform.url("gateway"),
            sale.arrival.seconds + sale.time_limit_seconds + START_SECONDS,
            LOADTEST_RESERVATIONS_FILE=str(given),
        )
        assert given.exists(), locust.stderr[-3000:]
        integrity = await audit(
            sale_platform, sale, SEEN_RESERVATIONS.validate_json(given.read_bytes())
        )

    assert sale_figures(integrity) == whole_sale(sale.seats), locust.stderr[-3000:]


@pytest.mark.slow
def test_locust_run_fails_when_the_error_rate_threshold_is_broken() -> None:
    # Nothing listens on this port: every request fails.
    result = _locust(f"http://127.0.0.1:{free_port()}", 60, LOADTEST_SECONDS="3")

    assert result.returncode == 1, result.stderr[-2000:]
    assert "threshold broken: error rate 100.00% above 1.00%" in result.stderr


@pytest.mark.slow
def test_locust_refuses_to_send_load_off_loopback() -> None:
    result = _locust(
        "http://127.0.0.1:9", 60, LOADTEST_SECONDS="3", LOADTEST_QUEUE_URL="http://192.0.2.1:8000"
    )

    assert result.returncode != 0
    assert "load is sent to loopback only" in result.stderr
