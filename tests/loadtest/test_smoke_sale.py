"""The smoke sale end to end on the real services: every seat sold, none twice, no reservation
lost.

It starts every registered service as `python -m ticketing <service>` against the session's
Redis, MariaDB and Kafka, sends the smoke crowd (loadtest/scenarios.json) and checks the
databases afterwards. Latency and rate thresholds are reported, not asserted: on a shared
two-core CI machine they measure the machine; integrity does not depend on it.
"""

from pathlib import Path

import pytest

from loadtest.platform import Platform
from tests.loadtest.whole_sale import play_smoke_sale


@pytest.mark.slow
@pytest.mark.timeout(600)
async def test_smoke_sale_sells_every_seat_once_and_loses_no_reservation(
    sale_platform: Platform, tmp_path: Path
) -> None:
    await play_smoke_sale(sale_platform, tmp_path / "results")
