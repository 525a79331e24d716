"""The smoke sale end to end on the real services: every seat sold, none twice, no reservation
lost.

It starts every registered service as `python -m ticketing <service>` against the session's
Redis, MariaDB and Kafka, once with the single Redis server and once with the session's Redis
Cluster (three primaries, a replica each: every script and MULTI of the sale must stay within
its sale's slot there, or the cluster refuses it), sends the smoke crowd
(loadtest/scenarios.json) and checks the databases afterwards. Latency and rate thresholds are reported, not asserted: on a shared
two-core CI machine they measure the machine; integrity does not depend on it.
"""

import uuid
from pathlib import Path

import pytest
from ticketing_dev.stack import LocalStack

from loadtest.platform import Platform
from tests.loadtest.whole_sale import play_smoke_sale


@pytest.mark.slow
@pytest.mark.timeout(600)
@pytest.mark.parametrize("redis", ["server", "cluster"])
async def test_smoke_sale_sells_every_seat_once_and_loses_no_reservation(
    redis: str, stack: LocalStack, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    cluster = request.getfixturevalue("redis_cluster") if redis == "cluster" else None
    platform = Platform(
        tmp_path / "platform", uuid.uuid4().hex[:8], stack=stack, redis_cluster=cluster
    )
    await play_smoke_sale(platform, tmp_path / "results")
