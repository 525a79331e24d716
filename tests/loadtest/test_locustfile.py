"""The Locust buyers, run the way a person runs them: `locust --headless` in its own process."""

import os
import subprocess
import sys
from pathlib import Path

import pytest
from ticketing_dev.ports import free_port

LOCUSTFILE = Path(__file__).resolve().parents[2] / "loadtest" / "crowd" / "locustfile.py"


def _locust(host: str, **env: str) -> subprocess.CompletedProcess[str]:
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
        env={**os.environ, "LOADTEST_SCENARIO": "smoke", "LOADTEST_SECONDS": "3", **env},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


@pytest.mark.slow
def test_locust_run_fails_when_the_error_rate_threshold_is_broken() -> None:
    # Nothing listens on this port: every request fails.
    result = _locust(f"http://127.0.0.1:{free_port()}")

    assert result.returncode == 1, result.stderr[-2000:]
    assert "threshold broken: error rate 100.00% above 1.00%" in result.stderr


@pytest.mark.slow
def test_locust_refuses_to_send_load_off_loopback() -> None:
    result = _locust("http://127.0.0.1:9", LOADTEST_QUEUE_URL="http://192.0.2.1:8000")

    assert result.returncode != 0
    assert "load is sent to loopback only" in result.stderr
