"""Write a run's report: `report.md`, `run.json` and the PNG plots, in one results directory."""

from dataclasses import dataclass
from pathlib import Path

from loadtest.report.analysis import (
    admission_figures,
    arrival_lag,
    arrival_stages,
    busiest_window,
    error_rate,
    percentile,
    verdict,
)
from loadtest.report.plots import PLOTS
from loadtest.report.record import RunRecord
from loadtest.scenarios import STEPS, Scenario

RESULTS_DIR = Path(__file__).resolve().parents[1] / "results"


@dataclass(frozen=True)
class Report:
    directory: Path
    markdown: Path
    broken: list[str]

    @property
    def passed(self) -> bool:
        return not self.broken


def write_report(record: RunRecord, scenario: Scenario, directory: Path) -> Report:
    directory.mkdir(parents=True, exist_ok=True)
    record.save(directory / "run.json")
    for name, plot in PLOTS.items():
        plot(record, directory / name)
    broken = verdict(record, scenario)
    markdown = directory / "report.md"
    markdown.write_text(render_markdown(record, scenario, broken))
    return Report(directory, markdown, broken)


def summary_lines(record: RunRecord, broken: list[str]) -> list[str]:
    """The few lines a person reads first; also what the demo prints at the end."""
    integrity = record.integrity
    admission = admission_figures(record)
    rate = f"{admission.steady_rate:.1f}/s" if admission.steady_rate is not None else "n/a"
    return [
        f"**{'PASSED' if not broken else 'FAILED'}** {record.scenario}: "
        f"{record.arrived} people, {record.seats} seats, {record.duration_seconds:.0f} s",
        f"sold {integrity.tickets} of {record.seats} seats, oversold {integrity.oversold}, "
        f"lost reservations {integrity.lost_reservations}",
        f"admitted {len(record.admissions)} at {rate} steady (configured {record.tps:g}/s)",
        f"error rate {error_rate(record):.2%} of {record.requests} requests",
        *(f"broken: {reason}" for reason in broken),
    ]


def _ms(value: float | None) -> str:
    return "-" if value is None else f"{value:.0f}"


# Parts of a service under this share of its CPU are summed into one line.
_SMALL_PART = 0.02


def _arrivals(record: RunRecord, scenario: Scenario) -> list[str]:
    stages = arrival_stages(record, scenario)
    if not stages:
        return []
    lag = arrival_lag(record, scenario)
    return [
        "## Arrivals",
        "",
        "| stage | seconds | people (ramp) | people (arrived) | off |",
        "|---|---|---:|---:|---:|",
        *(
            f"| {i} | {s.start:g}-{s.end:g} | {s.expected} | {s.arrived} | {s.off:.1%} |"
            for i, s in enumerate(stages, 1)
        ),
        "",
        f"p99 of how late a person arrived against the ramp: {_ms(lag)} ms.",
        "",
    ]


def _cpu(record: RunRecord) -> list[str]:
    """CPU per process while the crowd ran, and within each service where it went."""
    if not record.cpu:
        return []
    wall = max(record.duration_seconds, 1e-9)
    total = sum(process.seconds for process in record.cpu)
    lines = [
        "## CPU while the crowd ran",
        "",
        f"{total:.1f} CPU seconds in {wall:.0f} s ({total / wall:.2f} cores on average).",
        "",
        "| process | CPU seconds | cores on average | share |",
        "|---|---:|---:|---:|",
        *(
            f"| {p.name} | {p.seconds:.1f} | {p.seconds / wall:.2f} | "
            f"{p.seconds / total if total else 0:.1%} |"
            for p in record.cpu
        ),
        "",
    ]
    if (busy := busiest_window(record)) is not None:
        lines += [
            f"The busiest {busy.end - busy.start:.0f} s ({busy.start:.0f}-{busy.end:.0f} s), "
            f"{busy.total:.2f} cores together: "
            + ", ".join(
                f"{name} {cores:.2f}"
                for name, cores in sorted(busy.cores.items(), key=lambda item: -item[1])
                if cores >= 0.01
            )
            + ".",
            "",
        ]
    for process in record.cpu:
        if not process.parts:
            continue
        whole = sum(process.parts.values()) or 1e-9
        big = {p: s for p, s in process.parts.items() if s >= _SMALL_PART * whole}
        rest = whole - sum(big.values())
        lines += [
            f"{process.name}, by route and background loop (CPU seconds):",
            "",
            *(
                f"- {part}: {seconds:.2f} ({seconds / whole:.0%})"
                for part, seconds in sorted(big.items(), key=lambda item: -item[1])
            ),
            *([f"- everything else: {rest:.2f} ({rest / whole:.0%})"] if rest > 0 else []),
            "",
        ]
    return lines


def _served(record: RunRecord) -> list[str]:
    if not record.served:
        return []
    return [
        "## Latency as the services timed it",
        "",
        "From receiving a request to the end of its response, inside the service (the crowd's "
        "figures below add the network, the crowd's own queueing and its event loop). p95 is "
        "the histogram bucket bound under which 95 % fell.",
        "",
        "| service | route | requests | p95 under (ms) |",
        "|---|---|---:|---:|",
        *(
            f"| {r.service} | {r.route} | {r.requests} | "
            f"{'over the last bucket' if r.p95_under_ms is None else f'{r.p95_under_ms:g}'} |"
            for r in record.served
        ),
        "",
    ]


def render_markdown(record: RunRecord, scenario: Scenario, broken: list[str]) -> str:
    admission = admission_figures(record)
    lines = [
        f"# Load run: {record.scenario}",
        "",
        scenario.description,
        "",
        f"Started {record.started_at}; crowd ran {record.duration_seconds:.1f} s.",
        "",
        *(f"- {line}" for line in summary_lines(record, broken)),
        "",
        "## Machine",
        "",
        *(
            [f"- {line}" for line in record.machine.describe()]
            if record.machine
            else ["Not recorded."]
        ),
        "",
        *_arrivals(record, scenario),
        *_cpu(record),
        *_served(record),
        "## Outcomes",
        "",
        "| outcome | people |",
        "|---|---:|",
        *(f"| {name} | {count} |" for name, count in sorted(record.outcomes.items())),
        "",
        "## Errors by reason",
        "",
        *(
            [f"- {count} x {reason}" for reason, count in sorted(record.failures.items())]
            or ["None."]
        ),
        "",
        "## Integrity (checked in MySQL and Redis after the run)",
        "",
        "| figure | value |",
        "|---|---:|",
        *(f"| {name} | {value} |" for name, value in record.integrity.model_dump().items()),
        "",
        "## Admission",
        "",
        f"Configured {record.tps:g}/s; peak {admission.peak_rate}/s; "
        + (
            f"{admission.steady_rate:.1f}/s over {admission.backlog_seconds} s with a backlog."
            if admission.steady_rate is not None
            else "no second with a backlog to measure the rate over."
        ),
        "",
        "## Latency per step (ms)",
        "",
        "| step | samples | p50 | p95 | p99 | p95 limit | p99 limit |",
        "|---|---:|---:|---:|---:|---:|---:|",
    ]
    for step in STEPS:
        samples = record.latencies_ms.get(step, [])
        bound = scenario.thresholds.latency_ms[step]
        lines.append(
            f"| {step} | {len(samples)} | {_ms(percentile(samples, 0.5))} | "
            f"{_ms(percentile(samples, 0.95))} | {_ms(percentile(samples, 0.99))} | "
            f"{bound.p95:g} | {bound.p99:g} |"
        )
    lines += [
        "",
        "## Kafka",
        "",
        f"Retries {record.kafka.retries}, dead letters {record.kafka.dead_letters}.",
        "",
        "## Plots",
        "",
        *(f"![{name.removesuffix('.png')}]({name})" for name in PLOTS),
        "",
    ]
    if record.notes:
        lines += ["## Notes", "", *(f"- {note}" for note in record.notes), ""]
    return "\n".join(lines)
