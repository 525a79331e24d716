"""The report's PNG plots: admissions per second against the configured rate, the queue over
time, and latency percentiles per step."""

from pathlib import Path

from matplotlib.axes import Axes

# Figure objects, not pyplot: no global state and no display backend, so it runs on servers.
from matplotlib.figure import Figure

from loadtest.report.analysis import admitted_per_second, percentile
from loadtest.report.record import RunRecord
from loadtest.scenarios import STEPS

SHARES = (0.5, 0.95, 0.99)


def plot_admissions(record: RunRecord, path: Path) -> None:
    counts = admitted_per_second(record)
    figure, axes = _figure()
    axes.bar(range(len(counts)), counts, width=1.0, align="edge", label="admitted")
    axes.axhline(record.tps, color="tab:red", linestyle="--", label=f"configured {record.tps:g}/s")
    axes.set(xlabel="seconds since start", ylabel="people per second", title="Admissions")
    axes.legend(loc="upper right")
    _save(figure, path)


def plot_queue(record: RunRecord, path: Path) -> None:
    figure, axes = _figure()
    times = [s.t for s in record.queue]
    axes.plot(times, [s.waiting for s in record.queue], label="waiting")
    axes.plot(times, [s.active for s in record.queue], label="active (admitted)")
    axes.set(xlabel="seconds since start", ylabel="people", title="Waiting room")
    axes.legend(loc="upper right")
    _save(figure, path)


def plot_latency(record: RunRecord, path: Path) -> None:
    figure, axes = _figure()
    width = 0.8 / len(SHARES)
    for index, share in enumerate(SHARES):
        values = [percentile(record.latencies_ms.get(step, []), share) or 0.0 for step in STEPS]
        positions = [i + index * width for i in range(len(STEPS))]
        axes.bar(positions, values, width=width, label=f"p{share * 100:g}")
    axes.set_xticks([i + width for i in range(len(STEPS))], list(STEPS))
    axes.set_yscale("symlog")
    axes.set(ylabel="milliseconds", title="Latency per step")
    axes.legend(loc="upper left")
    _save(figure, path)


def _figure() -> tuple[Figure, Axes]:
    figure = Figure(figsize=(8, 3.5))
    return figure, figure.add_subplot()


def _save(figure: Figure, path: Path) -> None:
    figure.tight_layout()
    figure.savefig(path, dpi=100)


PLOTS = {
    "admissions.png": plot_admissions,
    "queue.png": plot_queue,
    "latency.png": plot_latency,
}
