"""Fixtures of the chart tests: the helm binary built by scripts/install/controlplane.sh."""

import os
from pathlib import Path

import pytest
from ticketing_dev.controlplane import find_binary
from ticketing_dev.servers import MissingPrerequisite


@pytest.fixture(scope="session")
def helm_binary() -> Path:
    try:
        return find_binary("helm")
    except MissingPrerequisite as exc:
        # CI builds helm; there a missing binary is a broken install, not a skip.
        if os.environ.get("CI") == "true":
            pytest.fail(f"{exc} (CI=true, so the chart tests may not be skipped)")
        pytest.skip(str(exc))
