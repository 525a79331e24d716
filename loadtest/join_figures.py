"""What a `bench_join` run measured, and the printed table of the medians: joins a second, the
services' CPU a join, latency percentiles, and the ratios to the bare endpoint in the same run.
"""

import argparse
from collections import Counter
from dataclasses import dataclass

from loadtest.bench_common import BenchmarkFailed, Sample, median, spread

# The join's goals, against the bare endpoint measured in the same run.
CPU_GOAL = 1.5
P99_GOAL = 2.0

# What each mode measures: the join over HTTP and WebSocket, and the bare endpoint over HTTP.
MODES = {
    "http": "queue join, HTTP POST",
    "ws": "queue join, WebSocket",
    "bare": "bare FastAPI endpoint, HTTP POST",
}


@dataclass(frozen=True)
class JoinRun:
    rate: Sample
    slowest_second: int
    users: int
    places: int | None  # in the line after the run; None for the bare endpoint, which has none
    tickets: int | None
    errors: Counter[str]
    client_cpu: float  # share of one core, all client processes together
    server_cpu: float  # share of one core, all service processes together
    p50_ms: float
    p99_ms: float
    ran_out: bool

    def figures(self) -> dict[str, object]:
        return {
            "joins_per_second": self.rate.value,
            "load_average": self.rate.load,
            "slowest_second": self.slowest_second,
            "users": self.users,
            "places": self.places,
            "tickets": self.tickets,
            "errors": dict(self.errors),
            "client_cpu_share": self.client_cpu,
            "service_cpu_share": self.server_cpu,
            "service_cpu_us_a_join": service_cpu_per_join(self),
            "p50_ms": self.p50_ms,
            "p99_ms": self.p99_ms,
            "fresh_users_ran_out": self.ran_out,
        }


def check_one_place_per_user(run: JoinRun) -> str:
    if run.places is None or run.tickets is None:
        return "no line (bare endpoint)"
    if run.places == run.users and run.tickets == run.users:
        return "one place per user"
    # A request that timed out may still have joined: only then can the line hold more.
    if run.errors and run.users <= run.places == run.tickets <= run.users + run.errors.total():
        return f"one place per user ({run.places - run.users} joined by timed-out requests)"
    raise BenchmarkFailed(
        f"the line holds {run.places} places and {run.tickets} tickets for {run.users} users"
    )


def service_cpu_per_join(run: JoinRun) -> float:
    """Microseconds of the services' CPU per join: less sensitive to a busy machine than joins/s."""
    return run.server_cpu / max(1.0, run.rate.value) * 1e6


def describe(mode: str, n: int, run: JoinRun, ceiling: Sample) -> str:
    errors = ", ".join(f"{k} x{v}" for k, v in run.errors.items()) or "no errors"
    return (
        f"run {n} {mode}: {run.rate.value:,.0f} joins/s (slowest second {run.slowest_second:,}), "
        f"{run.users:,} users: {check_one_place_per_user(run)}; {errors}; "
        f"p50 {run.p50_ms:.1f} ms, p99 {run.p99_ms:.1f} ms; "
        f"CPU client {run.client_cpu:.0%} service {run.server_cpu:.0%} of a core "
        f"({service_cpu_per_join(run):,.0f} µs a join); "
        f"ceiling ZADD {ceiling.value:,.0f}/s; load {run.rate.load:.1f}"
        + ("; fresh users ran out" if run.ran_out else "")
    )


@dataclass(frozen=True)
class ModeSummary:
    """A mode's medians over the runs."""

    rate: Sample
    slowest_second: int
    client_cpu: float
    server_cpu: float
    cpu_us: float
    p50_ms: float
    p99_ms: float

    @classmethod
    def of(cls, runs: list[JoinRun]) -> "ModeSummary":
        def mid(values: list[float]) -> float:
            return median([Sample(v, 0) for v in values]).value

        return cls(
            rate=median([r.rate for r in runs]),
            slowest_second=min(r.slowest_second for r in runs),
            client_cpu=mid([r.client_cpu for r in runs]),
            server_cpu=mid([r.server_cpu for r in runs]),
            cpu_us=mid([service_cpu_per_join(r) for r in runs]),
            p50_ms=mid([r.p50_ms for r in runs]),
            p99_ms=mid([r.p99_ms for r in runs]),
        )


def row(
    mode: str,
    runs: list[JoinRun],
    summary: ModeSummary,
    bare: ModeSummary | None,
    zadd: Sample,
    args: argparse.Namespace,
) -> list[str]:
    versus = (
        f"{summary.cpu_us / bare.cpu_us:.2f}x / {summary.p99_ms / bare.p99_ms:.2f}x"
        if bare and mode != "bare" and bare.cpu_us and bare.p99_ms
        else "-"
    )
    return [
        f"{MODES[mode]}, {args.servers} service process(es), {args.processes} client "
        f"process(es) x {args.connections}",
        f"{summary.rate.value:,.0f}/s ({spread([r.rate for r in runs])}); slowest second "
        f"{summary.slowest_second:,}",
        f"{summary.rate.value / zadd.value:.1%}",
        f"{summary.client_cpu:.0%} / {summary.server_cpu:.0%}",
        f"{summary.cpu_us:,.0f} µs",
        f"{summary.p50_ms:.1f} / {summary.p99_ms:.1f} ms",
        versus,
        f"{summary.rate.load:.1f}",
    ]
