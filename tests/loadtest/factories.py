"""Recorded-looking runs for report tests: a sale that admitted at its configured rate."""

from loadtest.report.record import (
    CpuSample,
    Integrity,
    ProcessCpu,
    QueueSample,
    RouteLatency,
    RunRecord,
)
from loadtest.scenarios import scenario


def make_run(
    *,
    name: str = "smoke",
    admitted_per_second: int | None = None,
    oversold: int = 0,
    lost: int = 0,
    hold_ms: float = 40.0,
    errors: int = 0,
    arrival_delay: float = 0.0,
) -> RunRecord:
    """A 20 s smoke-like run: a line of 200 from second 1.5 to 12.5, admissions at the given
    rate from second 2 to 12. People arrive on the scenario's ramp, `arrival_delay` s late."""
    sale = scenario(name)
    rate = admitted_per_second if admitted_per_second is not None else int(sale.tps)
    admissions = [2 + second + i / rate for second in range(10) for i in range(rate)]
    queue = [QueueSample(t=t / 2, waiting=200 if 3 <= t <= 25 else 0, active=40) for t in range(41)]
    return RunRecord(
        scenario=name,
        started_at="2026-12-01T12:00:00+00:00",
        duration_seconds=20.0,
        tps=sale.tps,
        max_active=sale.max_active,
        seats=sale.seats,
        arrived=sale.users,
        outcomes={"bought": 25, "abandoned": 30, "sold_out": 245},
        requests=1000,
        errors=errors,
        admissions=admissions,
        arrivals=[t + arrival_delay for t in sale.arrival.offsets()],
        queue=queue,
        latencies_ms={
            "join": [5.0 + i % 20 for i in range(300)],
            "admit": [1000.0 + 20 * i for i in range(300)],
            "hold": [hold_ms] * 60,
            "confirm": [300.0] * 25,
        },
        integrity=Integrity(tickets=50, oversold=oversold, lost_reservations=lost),
        cpu=[
            ProcessCpu(name="queue", seconds=4.0, parts={"POST /sales/{event_id}/queue": 3.0}),
            ProcessCpu(name="crowd 0", seconds=2.0),
        ],
        cpu_timeline=[
            CpuSample(t=2.0 * (i + 1), cores={"queue": 0.8 if 3 <= i < 8 else 0.1, "redis": 0.05})
            for i in range(10)
        ],
        served=[
            RouteLatency(
                service="queue", route="POST /sales/{event_id}/queue", requests=300, p95_under_ms=10
            ),
            RouteLatency(
                service="queue", route="GET /sales/{event_id}/queue", requests=9, p95_under_ms=None
            ),
        ],
    )
