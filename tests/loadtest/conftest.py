"""The local platform the sale tests play against: every service on the session's servers."""

import uuid
from pathlib import Path

import pytest
from ticketing_dev.stack import LocalStack

from loadtest.platform import Platform


@pytest.fixture
def sale_platform(stack: LocalStack, tmp_path: Path) -> Platform:
    """Not started yet: the test starts it (loadtest.sale.sale_on) and it stops with the sale.
    Its own run id keeps its database, Redis keys and Kafka topics apart from other tests'."""
    return Platform(tmp_path / "platform", uuid.uuid4().hex[:8], stack=stack)
