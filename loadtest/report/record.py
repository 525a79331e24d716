"""What one load run recorded, kept as `run.json` beside its report so a report can be rebuilt."""

from pathlib import Path

from pydantic import BaseModel, Field

from loadtest.report.machine import Machine


class QueueSample(BaseModel):
    """The waiting room at one moment, `t` seconds after the crowd started."""

    t: float
    waiting: int
    active: int


class Integrity(BaseModel):
    """What the databases say after the run: the figures a sale is judged on."""

    tickets: int = 0
    oversold: int = Field(default=0, description="seats sold more than once, or beyond the venue")
    lost_reservations: int = Field(
        default=0, description="reservations a buyer was given that never reached a final state"
    )
    confirmed_without_ticket: int = 0
    expired_reservations: int = 0


class KafkaFigures(BaseModel):
    retries: int = 0
    dead_letters: int = 0


class ProcessCpu(BaseModel):
    """CPU seconds one process of the run spent while the crowd ran; for a service, by route and
    background loop (`parts`)."""

    name: str
    seconds: float
    parts: dict[str, float] = Field(default_factory=dict)


class CpuSample(BaseModel):
    """Cores each process used in the interval that ended `t` seconds after the crowd started."""

    t: float
    cores: dict[str, float]


class RouteLatency(BaseModel):
    """A service route while the crowd ran, as the service timed it: how many requests, and the
    histogram bucket bound under which 95 % of them were answered (None: over the last bound)."""

    service: str
    route: str
    requests: int
    p95_under_ms: float | None


class RunRecord(BaseModel):
    scenario: str
    started_at: str
    duration_seconds: float
    tps: float
    max_active: int
    seats: int
    arrived: int
    outcomes: dict[str, int] = Field(default_factory=dict)
    failures: dict[str, int] = Field(default_factory=dict, description="errors by reason")
    requests: int = 0
    errors: int = 0
    admissions: list[float] = Field(default_factory=list, description="seconds from start")
    arrivals: list[float] = Field(
        default_factory=list, description="when each person arrived, seconds from start"
    )
    queue: list[QueueSample] = Field(default_factory=list)
    latencies_ms: dict[str, list[float]] = Field(default_factory=dict)
    integrity: Integrity = Field(default_factory=Integrity)
    kafka: KafkaFigures = Field(default_factory=KafkaFigures)
    notes: list[str] = Field(default_factory=list)
    machine: Machine | None = None
    cpu: list[ProcessCpu] = Field(
        default_factory=list, description="CPU seconds per process while the crowd ran"
    )
    cpu_timeline: list[CpuSample] = Field(
        default_factory=list, description="cores per process, every two seconds"
    )
    served: list[RouteLatency] = Field(
        default_factory=list, description="each service route's p95 as the service timed it"
    )

    def save(self, path: Path) -> None:
        path.write_text(self.model_dump_json(indent=1))

    @classmethod
    def load(cls, path: Path) -> "RunRecord":
        return cls.model_validate_json(path.read_text())
