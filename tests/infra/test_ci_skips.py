"""Under CI=true a skipped test is a failure (tests/prerequisites.py); elsewhere it stays a skip."""

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
SKIPPING = """
import pytest

from tests.prerequisites import missing


def test_needs_a_binary_that_is_absent():
    missing("frobnicator is not installed")


def test_skips_by_itself():
    pytest.skip("written without missing()")


@pytest.mark.xfail(reason="a known failure is not a skip")
def test_known_failure():
    raise AssertionError
"""


def _run(tmp_path: Path, ci: str | None) -> subprocess.CompletedProcess[str]:
    test_file = tmp_path / "test_skipping.py"
    test_file.write_text(SKIPPING)
    env = {k: v for k, v in os.environ.items() if k != "CI"}
    if ci is not None:
        env["CI"] = ci
    command = [sys.executable, "-m", "pytest", "-p", "tests.prerequisites", "-q", "-rA"]
    return subprocess.run(
        [*command, "-c", os.devnull, "--rootdir", str(tmp_path), str(test_file)],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def test_skips_fail_under_ci(tmp_path: Path) -> None:
    result = _run(tmp_path, "true")

    assert result.returncode == 1, result.stdout
    assert "2 failed, 1 xfailed" in result.stdout
    assert "frobnicator is not installed (CI=true, so this test may not be skipped)" in (
        result.stdout
    )
    assert "skipped under CI=true, where every test must run: Skipped: written without" in (
        result.stdout
    )


@pytest.mark.parametrize("ci", [None, "false"], ids=["unset", "false"])
def test_skips_stay_skips_outside_ci(tmp_path: Path, ci: str | None) -> None:
    result = _run(tmp_path, ci)

    assert result.returncode == 0, result.stdout
    assert "2 skipped, 1 xfailed" in result.stdout
