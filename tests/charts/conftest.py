"""Fixtures of the chart tests: the helm binary built by scripts/install/controlplane.sh."""

from pathlib import Path

import pytest
from ticketing_dev.controlplane import find_binary
from ticketing_dev.servers import MissingPrerequisite

from tests.prerequisites import missing


@pytest.fixture(scope="session")
def helm_binary() -> Path:
    try:
        return find_binary("helm")
    except MissingPrerequisite as exc:
        missing(str(exc))
