"""The smoke sale through running pods (tests/cluster/sale.py), and a second sale that loses its
reservation and payment pods midway and must lose nothing.

The first sale's report goes to a temporary directory, or to TICKETING_CLUSTER_REPORT_DIR when
it is set (loadtest/results/cluster-smoke/ holds the committed one)."""

import asyncio
import os
from pathlib import Path

import pytest

from loadtest.report.write import write_report
from loadtest.scenarios import scenario as named_scenario
from tests.cluster.conftest import Kind
from tests.cluster.sale import play_smoke_sale

# The first test builds the images and creates the cluster (minutes on a warm cache, about
# 30 on a cold one), inside its own timeout.
pytestmark = [pytest.mark.cluster, pytest.mark.timeout(2700)]

# The crowd of the smoke scenario arrives over 20 s: the pods go while the line is busy.
KILL_AFTER_SECONDS = 8


async def test_the_smoke_sale_sells_every_seat_through_the_cluster(
    kind_cluster: Kind, tmp_path: Path
) -> None:
    smoke = named_scenario("smoke")

    sale = await play_smoke_sale(kind_cluster)
    write_report(sale.record, smoke, Path(os.environ.get("TICKETING_CLUSTER_REPORT_DIR", tmp_path)))

    assert sale.integrity.tickets == smoke.seats, sale.record.outcomes
    assert sale.integrity.oversold == 0
    assert sale.integrity.lost_reservations == 0
    assert sale.integrity.confirmed_without_ticket == 0
    assert sale.pending == 0


async def test_killing_the_reservation_and_payment_pods_mid_sale_loses_nothing(
    kind_cluster: Kind,
) -> None:
    async def kill_pods() -> None:
        await asyncio.sleep(KILL_AFTER_SECONDS)
        for component in ("reservation", "payment"):
            await asyncio.to_thread(
                kind_cluster.kubectl, "delete", "pod", "--wait=false",
                "-l", f"app.kubernetes.io/component={component}",
            )  # fmt: skip

    sale = await play_smoke_sale(kind_cluster, during=kill_pods)

    assert sale.integrity.oversold == 0
    assert sale.integrity.lost_reservations == 0
    assert sale.integrity.confirmed_without_ticket == 0
    assert sale.pending == 0, "a reservation was left PENDING after its hold expired"
    assert sale.integrity.tickets > 0, sale.record.outcomes
