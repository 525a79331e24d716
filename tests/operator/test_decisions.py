"""The operator's decisions on their own: phase from clock and stock, retry workers from the
backlog with a cool-down, and adaptive admission from measured load."""

from datetime import UTC, datetime, timedelta

import pytest
from ticketing.common.sale_config import Phase
from ticketing_operator.adaptive import plan_admission
from ticketing_operator.figures import QueueFigures, SeatFigures
from ticketing_operator.phase import sale_phase
from ticketing_operator.runtime import sale_config
from ticketing_operator.scaling import plan_workers

from tests.operator.factories import make_spec

OPENS = datetime(2027, 4, 1, 12, tzinfo=UTC)
STOCK = SeatFigures(free=10, held=0, sold=10)


@pytest.mark.parametrize(
    ("offset", "seats", "phase"),
    [
        (timedelta(minutes=-31), STOCK, Phase.SCHEDULED),
        (timedelta(minutes=-30), STOCK, Phase.PRE_QUEUE),
        (timedelta(0), STOCK, Phase.ON_SALE),
        (timedelta(minutes=5), SeatFigures(free=0, held=0, sold=20), Phase.SOLD_OUT),
        (timedelta(minutes=5), SeatFigures(free=0, held=2, sold=18), Phase.ON_SALE),
        (timedelta(minutes=5), SeatFigures(free=0, held=0, sold=0), Phase.ON_SALE),
        (timedelta(hours=2), STOCK, Phase.CLOSED),
    ],
    ids=[
        "before-doors",
        "doors-open",
        "opening",
        "every-seat-sold",
        "holds-may-return",
        "inventory-not-loaded",
        "window-closed",
    ],
)
def test_phase_follows_clock_and_stock(offset: timedelta, seats: SeatFigures, phase: Phase) -> None:
    assert sale_phase(make_spec().sale, seats, OPENS + offset) is phase


def test_workers_scale_up_at_once_to_at_most_max() -> None:
    policy = make_spec(retryWorkers={"backlogPerReplica": 100, "maxReplicas": 5}).retry_workers

    assert plan_workers(policy, 250, 1, None, OPENS).replicas == 3
    assert plan_workers(policy, 10_000, 1, None, OPENS).replicas == 5


def test_workers_scale_down_only_after_the_cooldown() -> None:
    policy = make_spec(retryWorkers={"cooldownSeconds": 60}).retry_workers

    waiting = plan_workers(policy, 0, 4, None, OPENS)
    still = plan_workers(policy, 0, 4, waiting.low_since, OPENS + timedelta(seconds=59))
    done = plan_workers(policy, 0, 4, waiting.low_since, OPENS + timedelta(seconds=60))

    assert (waiting.replicas, waiting.low_since) == (4, OPENS)
    assert still.replicas == 4
    assert (done.replicas, done.low_since) == (1, None)


def test_backlog_rising_again_resets_the_cooldown() -> None:
    policy = make_spec(retryWorkers={"backlogPerReplica": 100}).retry_workers

    plan = plan_workers(policy, 400, 4, OPENS, OPENS + timedelta(hours=1))

    assert (plan.replicas, plan.low_since) == (4, None)


ADAPTIVE = {"adaptive": {"enabled": True, "minTps": 20, "maxTps": 200}}


@pytest.mark.parametrize(
    ("active", "waiting", "backlog", "tps", "because"),
    [
        (100, 5000, 0, 120, "filling no-shows"),
        (950, 5000, 0, 80, "at 95% of the cap"),
        (600, 5000, 9000, 50, "retry backlog 9000 exceeds"),
        (600, 5000, 0, 100, "steady"),
        (100, 0, 0, 100, "steady"),
    ],
    ids=["no-shows", "near-cap", "downstream-failing", "balanced", "nobody-waiting"],
)
def test_adaptive_admission_moves_tps_and_says_why(
    active: int, waiting: int, backlog: int, tps: float, because: str
) -> None:
    spec = make_spec(admission=ADAPTIVE)

    plan = plan_admission(
        spec.admission,
        spec.retry_workers,
        100,
        Phase.ON_SALE,
        QueueFigures(waiting=waiting, active=active),
        backlog,
    )

    assert plan.tps == tps
    assert because in plan.reason


def test_adaptive_admission_stays_within_its_bounds() -> None:
    spec = make_spec(admission=ADAPTIVE)
    busy = QueueFigures(waiting=10, active=1000)

    plan = plan_admission(spec.admission, spec.retry_workers, 21, Phase.ON_SALE, busy, 0)

    assert plan.tps == 20


def test_fixed_admission_keeps_the_spec_tps() -> None:
    spec = make_spec()
    idle = QueueFigures(waiting=5000, active=0)

    plan = plan_admission(spec.admission, spec.retry_workers, 150, Phase.ON_SALE, idle, 0)

    assert (plan.tps, plan.reason) == (100, "fixed by spec.admission.tps")


def test_a_session_too_short_for_a_full_cap_is_lengthened_so_the_last_admitted_can_hold() -> None:
    # Stored before the API server's rule existed: 1,000 admitted at 10/s and 30 s tokens.
    short = make_spec(admission={"tps": 10, "maxActive": 1000, "sessionTTLSeconds": 30})
    assert sale_config("gig", short, Phase.ON_SALE, 10).session_ttl_seconds == 120
    # Adaptive admission slowing to 5/s needs longer still; a long enough session is kept.
    assert sale_config("gig", short, Phase.ON_SALE, 5).session_ttl_seconds == 220
    assert sale_config("gig", make_spec(), Phase.ON_SALE, 100).session_ttl_seconds == 300
