"""The load-test scenarios, read from `scenarios.json`, the one definition the k6 scripts share.

An arrival ramp is given the way k6's ramping-arrival-rate executor takes it: a start rate and
stages of (seconds, target rate), the rate moving linearly to each target. The Python crowd
derives every person's arrival time from the same ramp, so both tools send the same crowd.
"""

import json
import math
from functools import cache
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

SCENARIOS_FILE = Path(__file__).with_name("scenarios.json")

# The steps of one purchase whose latency the thresholds bound, in the order a buyer takes them.
STEPS = ("join", "admit", "hold", "confirm")


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class Arrival(_Frozen):
    start_rate: float = Field(ge=0)
    stages: tuple[tuple[float, float], ...] = Field(min_length=1)

    @model_validator(mode="after")
    def _stages_are_positive(self) -> "Arrival":
        for seconds, target in self.stages:
            if seconds <= 0 or target < 0:
                raise ValueError("every stage needs seconds > 0 and a target rate >= 0")
        return self

    @property
    def seconds(self) -> float:
        return sum(seconds for seconds, _ in self.stages)

    @property
    def users(self) -> int:
        """How many people the ramp brings: the area under its rate."""
        total, rate = 0.0, self.start_rate
        for seconds, target in self.stages:
            total += (rate + target) / 2 * seconds
            rate = target
        return round(total)

    def offsets(self) -> list[float]:
        """Each person's arrival, in seconds from the start: person i comes when i + 0.5 have."""
        times: list[float] = []
        done, start, rate = 0.0, 0.0, self.start_rate
        for seconds, target in self.stages:
            slope = (target - rate) / seconds
            stage_total = (rate + target) / 2 * seconds
            while len(times) < self.users and len(times) + 0.5 <= done + stage_total:
                times.append(start + _time_to_reach(len(times) + 0.5 - done, rate, slope))
            done, start, rate = done + stage_total, start + seconds, target
        return times


def _time_to_reach(count: float, rate: float, slope: float) -> float:
    """Solve rate*t + slope*t^2/2 = count for the first t >= 0."""
    if abs(slope) < 1e-12:
        return count / rate
    return (-rate + math.sqrt(max(rate * rate + 2 * slope * count, 0.0))) / slope


class Behaviour(_Frozen):
    """Shares of admitted buyers who leave, pay after their hold expired, or whose payment fails."""

    abandon_rate: float = Field(ge=0, le=1)
    pay_too_late_rate: float = Field(ge=0, le=1)
    payment_failure_rate: float = Field(ge=0, le=1)

    @model_validator(mode="after")
    def _shares_fit(self) -> "Behaviour":
        if self.abandon_rate + self.pay_too_late_rate + self.payment_failure_rate > 1:
            raise ValueError("the behaviour shares add up to more than 1")
        return self


class Percentiles(_Frozen):
    p95: float = Field(gt=0)
    p99: float = Field(gt=0)


class Thresholds(_Frozen):
    error_rate: float = Field(ge=0, le=1)
    admission_rate_tolerance: float = Field(gt=0, lt=1)
    latency_ms: dict[str, Percentiles]

    @model_validator(mode="after")
    def _every_step_bounded(self) -> "Thresholds":
        if set(self.latency_ms) != set(STEPS):
            raise ValueError(f"latency_ms must bound exactly the steps {', '.join(STEPS)}")
        return self


class Scenario(_Frozen):
    name: str
    description: str
    event_id: str
    seats: int = Field(gt=0)
    tps: float = Field(gt=0)
    max_active: int = Field(gt=0)
    session_ttl_seconds: int = Field(gt=0)
    hold_ttl_seconds: int = Field(gt=0)
    seats_per_buyer: int = Field(gt=0)
    arrival: Arrival
    websocket_share: float = Field(ge=0, le=1)
    # "api" signs every person up and in through the user service; "minted" signs their login
    # tokens locally, because argon2 password hashing for 50,000 people would measure the
    # hash, not the sale, on a two-core machine.
    login: Literal["api", "minted"]
    behaviour: Behaviour
    thresholds: Thresholds
    time_limit_seconds: int = Field(gt=0)

    @property
    def users(self) -> int:
        return self.arrival.users


@cache
def load_scenarios(path: Path = SCENARIOS_FILE) -> dict[str, Scenario]:
    raw: dict[str, dict[str, object]] = json.loads(path.read_text())
    return {name: Scenario.model_validate({"name": name, **body}) for name, body in raw.items()}


class UnknownScenario(KeyError):
    def __str__(self) -> str:
        return f"no scenario {self.args[0]!r}; known: {', '.join(load_scenarios())}"


def scenario(name: str) -> Scenario:
    try:
        return load_scenarios()[name]
    except KeyError as exc:
        raise UnknownScenario(name) from exc
