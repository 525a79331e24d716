"""A whole sale as the audit (loadtest.integrity) counts it: every seat sold, none twice, no
reservation lost, every confirmation with its ticket. The sale tests compare against it,
whichever crowd played the sale."""

from pathlib import Path

from loadtest.platform import Platform
from loadtest.report.record import Integrity, RunRecord
from loadtest.run import run_scenario
from loadtest.scenarios import scenario

FIGURES = {"tickets", "oversold", "lost_reservations", "confirmed_without_ticket"}


def sale_figures(integrity: Integrity) -> dict[str, int]:
    return integrity.model_dump(include=FIGURES)


def whole_sale(seats: int) -> dict[str, int]:
    return {"tickets": seats, "oversold": 0, "lost_reservations": 0, "confirmed_without_ticket": 0}


async def play_smoke_sale(platform: Platform, results: Path) -> None:
    """Start every service on `platform`'s servers, send the smoke crowd
    (loadtest/scenarios.json) and fail unless the audit finds the whole sale."""
    sale = scenario("smoke")
    report = await run_scenario(sale, results, platform, print)
    integrity = RunRecord.load(report.directory / "run.json").integrity
    # 300 people for 50 seats: seats freed by abandoned, failed or late payments are held again.
    assert sale_figures(integrity) == whole_sale(sale.seats), report.markdown.read_text()
