"""The report generator on recorded runs: verdicts, Markdown and plots a person reads."""

from pathlib import Path

import pytest

from loadtest.report.analysis import admission_figures, percentile
from loadtest.report.record import RunRecord
from loadtest.report.write import write_report
from loadtest.scenarios import scenario
from tests.loadtest.factories import make_run

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def test_clean_run_passes_and_writes_markdown_plots_and_record(tmp_path: Path) -> None:
    report = write_report(make_run(), scenario("smoke"), tmp_path)

    assert report.passed
    text = report.markdown.read_text()
    assert "**PASSED** smoke" in text
    assert "sold 50 of 50 seats, oversold 0, lost reservations 0" in text
    for plot in ("admissions.png", "queue.png", "latency.png"):
        assert (tmp_path / plot).read_bytes().startswith(PNG_SIGNATURE)
        assert f"({plot})" in text
    assert (tmp_path / "run.json").exists()
    assert "| queue | 4.0 | 0.20 | 66.7% |" in text
    assert "- POST /sales/{event_id}/queue: 3.00 (100%)" in text
    assert "| 2 | 5-15 | 200 | 200 | 0.0% |" in text
    assert "| queue | POST /sales/{event_id}/queue | 300 | 10 |" in text
    assert "| queue | GET /sales/{event_id}/queue | 9 | over the last bucket |" in text
    assert RunRecord.load(tmp_path / "run.json").served[1].p95_under_ms is None
    assert "The busiest 10 s (6-16 s), 0.85 cores together: queue 0.80, redis 0.05." in text


def test_admission_rate_is_measured_only_while_people_wait() -> None:
    figures = admission_figures(make_run(admitted_per_second=10))

    assert figures.steady_rate == pytest.approx(10)
    assert figures.backlog_seconds >= 3


def test_admission_rate_is_not_judged_while_the_active_cap_is_full() -> None:
    run = make_run(admitted_per_second=5)
    full = [sample.model_copy(update={"active": run.max_active}) for sample in run.queue]

    figures = admission_figures(run.model_copy(update={"queue": full}))

    assert figures.steady_rate is None


@pytest.mark.parametrize(
    ("run", "reason"),
    [
        pytest.param(make_run(oversold=1), "1 seat(s) oversold", id="oversold"),
        pytest.param(make_run(lost=2), "2 reservation(s) lost", id="lost-reservation"),
        pytest.param(make_run(hold_ms=2000), "hold p95 2000 ms above 500 ms", id="slow-hold"),
        pytest.param(make_run(errors=50), "error rate 5.00% above 1.00%", id="errors"),
        pytest.param(
            make_run(admitted_per_second=5),
            "admitted 5.0/s against 10/s configured (50.0% off, tolerance 10%)",
            id="admits-too-slowly",
        ),
        pytest.param(
            make_run(arrival_delay=1.0),
            "stage 1 brought 32 people against 50 (36.0% off, tolerance 2%)",
            id="crowd-fell-behind-its-ramp",
        ),
    ],
)
def test_run_fails_with_the_broken_threshold_named(
    tmp_path: Path, run: RunRecord, reason: str
) -> None:
    report = write_report(run, scenario("smoke"), tmp_path)

    assert not report.passed
    assert reason in report.broken
    assert f"broken: {reason}" in report.markdown.read_text()


def test_percentile_is_nearest_rank() -> None:
    assert percentile([float(v) for v in range(1, 101)], 0.95) == 95.0
    assert percentile([], 0.5) is None
