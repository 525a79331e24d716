"""Figures from a run record, and the verdict: which of the scenario's thresholds it broke."""

import math
from dataclasses import dataclass

from loadtest.report.record import RunRecord
from loadtest.scenarios import STEPS, Scenario

# Fewer full seconds of backlog than this say nothing about the admission rate.
MIN_BACKLOG_SECONDS = 3
# The crowd must bring each stage's people within this share of the scenario's ramp, or the
# run measured another sale than the scenario's.
ARRIVAL_TOLERANCE = 0.02


def percentile(values: list[float], share: float) -> float | None:
    """Nearest-rank percentile, as k6 and Locust report them; None for no values."""
    if not values:
        return None
    ordered = sorted(values)
    return ordered[max(math.ceil(share * len(ordered)) - 1, 0)]


def admitted_per_second(record: RunRecord) -> list[int]:
    """Admissions in each whole second of the run."""
    seconds = max(math.ceil(record.duration_seconds), 1)
    counts = [0] * seconds
    for t in record.admissions:
        counts[min(int(t), seconds - 1)] += 1
    return counts


def backlog_seconds(record: RunRecord) -> list[int]:
    """Whole seconds in which at least a second's worth of admissions (TPS) waited and the
    active sessions left room for them throughout: the rate limit, not the crowd's arrival
    nor the active-session cap, bound the admissions.

    Without queue samples: the seconds strictly between the first and the last admission.
    """
    if not record.admissions:
        return []
    first, last = int(min(record.admissions)), int(max(record.admissions))
    if not record.queue:
        return list(range(first + 1, last))
    backlogged = []
    for second in range(first, last + 1):
        inside = [s for s in record.queue if second <= s.t <= second + 1]
        room = record.max_active - record.tps
        if inside and all(s.waiting >= record.tps and s.active <= room for s in inside):
            backlogged.append(second)
    return backlogged


@dataclass(frozen=True)
class AdmissionFigures:
    steady_rate: float | None
    backlog_seconds: int
    peak_rate: int


def admission_figures(record: RunRecord) -> AdmissionFigures:
    counts = admitted_per_second(record)
    seconds = backlog_seconds(record)
    steady = sum(counts[s] for s in seconds) / len(seconds) if seconds else None
    return AdmissionFigures(steady, len(seconds), max(counts, default=0))


@dataclass(frozen=True)
class StageArrivals:
    """People who arrived within one stage of the ramp, against how many the ramp brings."""

    start: float
    end: float
    expected: int
    arrived: int

    @property
    def off(self) -> float:
        return abs(self.arrived - self.expected) / self.expected if self.expected else 0.0


def arrival_stages(record: RunRecord, scenario: Scenario) -> list[StageArrivals]:
    """Each stage's arrivals as the crowd recorded them (nothing for a record without them)."""
    if not record.arrivals:
        return []
    offsets = scenario.arrival.offsets()
    stages, start = [], 0.0
    for seconds, _ in scenario.arrival.stages:
        end = start + seconds
        stages.append(
            StageArrivals(
                start,
                end,
                sum(start <= t < end for t in offsets),
                sum(start <= t < end for t in record.arrivals),
            )
        )
        start = end
    return stages


def arrival_lag(record: RunRecord, scenario: Scenario) -> float | None:
    """The 99th percentile of how late people arrived, in ms: the n-th arrival against the
    ramp's n-th arrival time. A crowd with room to spare keeps this to a few milliseconds."""
    offsets = scenario.arrival.offsets()
    lags = [
        (actual - planned) * 1000
        for actual, planned in zip(sorted(record.arrivals), offsets, strict=False)
    ]
    return percentile(lags, 0.99)


def error_rate(record: RunRecord) -> float:
    return record.errors / record.requests if record.requests else 0.0


def verdict(record: RunRecord, scenario: Scenario) -> list[str]:
    """Every threshold the run broke, in words; empty when it passed."""
    broken: list[str] = []
    integrity = record.integrity
    if integrity.oversold:
        broken.append(f"{integrity.oversold} seat(s) oversold")
    if integrity.lost_reservations:
        broken.append(f"{integrity.lost_reservations} reservation(s) lost")
    if integrity.confirmed_without_ticket:
        broken.append(f"{integrity.confirmed_without_ticket} confirmation(s) without a ticket")
    limit = scenario.thresholds.error_rate
    if (rate := error_rate(record)) > limit:
        broken.append(f"error rate {rate:.2%} above {limit:.2%}")
    for step in STEPS:
        bound = scenario.thresholds.latency_ms[step]
        samples = record.latencies_ms.get(step, [])
        for name, share, ceiling in (("p95", 0.95, bound.p95), ("p99", 0.99, bound.p99)):
            value = percentile(samples, share)
            if value is not None and value > ceiling:
                broken.append(f"{step} {name} {value:.0f} ms above {ceiling:.0f} ms")
    for index, stage in enumerate(arrival_stages(record, scenario), 1):
        if stage.off > ARRIVAL_TOLERANCE:
            broken.append(
                f"stage {index} brought {stage.arrived} people against {stage.expected} "
                f"({stage.off:.1%} off, tolerance {ARRIVAL_TOLERANCE:.0%})"
            )
    admission = admission_figures(record)
    tolerance = scenario.thresholds.admission_rate_tolerance
    if admission.steady_rate is not None and admission.backlog_seconds >= MIN_BACKLOG_SECONDS:
        off = abs(admission.steady_rate - record.tps) / record.tps
        if off > tolerance:
            broken.append(
                f"admitted {admission.steady_rate:.1f}/s against {record.tps:g}/s configured "
                f"({off:.1%} off, tolerance {tolerance:.0%})"
            )
    return broken


@dataclass(frozen=True)
class BusyWindow:
    """Consecutive CPU samples and each process's average cores over them."""

    start: float
    end: float
    cores: dict[str, float]

    @property
    def total(self) -> float:
        return sum(self.cores.values())


def busiest_window(record: RunRecord, samples: int = 5) -> BusyWindow | None:
    """The `samples` consecutive CPU samples (two seconds each) in which the run's processes
    used the most CPU together: a sale's rush, which averages over the run hide."""
    timeline = record.cpu_timeline
    best: BusyWindow | None = None
    for first in range(max(len(timeline) - samples + 1, 1)):
        window = timeline[first : first + samples]
        if not window:
            break
        names = {name for sample in window for name in sample.cores}
        cores = {
            name: sum(sample.cores.get(name, 0.0) for sample in window) / len(window)
            for name in names
        }
        start = timeline[first - 1].t if first else max(window[0].t - 2.0, 0.0)
        candidate = BusyWindow(start, window[-1].t, cores)
        if best is None or candidate.total > best.total:
            best = candidate
    return best
