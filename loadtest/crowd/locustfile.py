"""Locust buyers for one scenario: `LOADTEST_SCENARIO=smoke locust -f loadtest/crowd/locustfile.py --headless`.

Service URLs come from LOADTEST_USER_URL, LOADTEST_QUEUE_URL, LOADTEST_EVENT_URL,
LOADTEST_SEAT_URL and LOADTEST_RESERVATION_URL (loopback only), default `--host` (the
gateway serves them all). Each Locust user is one person who arrives on the scenario's ramp,
makes one visit (join, wait, hold, watch payment settle the reservation), then idles; the run
ends when every visit is over, or after the ramp and the scenario's time limit. They wait by
polling: the WebSocket crowd is loadtest/crowd/waiters.py. At the end it prints the visits'
outcomes and, with LOADTEST_RESERVATIONS_FILE, writes the reservations the buyers were given
there (JSON, for loadtest.integrity's audit). The run exits 1 when it breaks the scenario's
error-rate or latency thresholds. Locust is imported only here, in its own process, so
gevent's monkeypatching never reaches the test suite.
"""

import bisect
import os
import random
import sys
import time
import uuid
from pathlib import Path
from typing import Any

# Locust runs this file by path: make `loadtest` importable from the repository root.
sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from locust import HttpUser, LoadTestShape, constant, events, task
from locust.env import Environment
from ticketing.common.settings import CommonSettings

from loadtest.crowd.behaviour import Plan, pick_plan
from loadtest.crowd.client import (
    TERMINAL_STATUSES,
    Call,
    QueueState,
    SaleApi,
    ServiceUrls,
    access_token,
    free_seat_ids,
    place_from,
    reservation_id,
    reservation_status,
)
from loadtest.crowd.identity import PASSWORD, Person, minted_token
from loadtest.crowd.recorder import SEEN_RESERVATIONS, Recorder, SeenReservation
from loadtest.scenarios import STEPS, scenario

SCENARIO = scenario(os.environ.get("LOADTEST_SCENARIO", "smoke"))
# A shorter run than the scenario's own, for checks of the Locust wiring itself.
SECONDS = float(
    os.environ.get("LOADTEST_SECONDS", SCENARIO.arrival.seconds + SCENARIO.time_limit_seconds)
)
RUN_ID = uuid.uuid4().hex[:6]
ARRIVALS = SCENARIO.arrival.offsets()
PEAK_RATE = max(SCENARIO.arrival.start_rate, *(target for _, target in SCENARIO.arrival.stages))
SETTINGS = CommonSettings()
RESERVATIONS_FILE = os.environ.get("LOADTEST_RESERVATIONS_FILE")
_people = iter(range(len(ARRIVALS)))
# The visits' outcomes and the reservations the buyers were given, in this Locust process.
RECORDER = Recorder()


def _urls(host: str) -> ServiceUrls:
    def url(name: str) -> str:
        value = os.environ.get(f"LOADTEST_{name.upper()}_URL", host)
        if not value.startswith(("http://127.", "http://localhost")):
            raise SystemExit(f"load is sent to loopback only; {name} URL is {value!r}")
        return value.rstrip("/")

    return ServiceUrls(*(url(name) for name in ("user", "queue", "event", "seat", "reservation")))


class Arrivals(LoadTestShape):
    """As many users as people have arrived by now on the scenario's ramp."""

    def tick(self) -> tuple[int, float] | None:
        now = self.get_run_time()  # type: ignore[no-untyped-call]  # locust is untyped
        if now > SECONDS or RECORDER.outcomes.total() >= len(ARRIVALS):
            return None
        return bisect.bisect_right(ARRIVALS, now), max(PEAK_RATE, 1.0)


class Buyer(HttpUser):
    wait_time = constant(1)

    def on_start(self) -> None:
        self.api = SaleApi(_urls(self.host or ""), SCENARIO.event_id)
        self.person = Person(RUN_ID, next(_people, -1))
        self.rng = random.Random(self.person.index)
        self.visited = False

    def _call(
        self, call: Call, ok: tuple[int, ...] = (200, 201), refusals: tuple[int, ...] = (409, 410)
    ) -> Any:
        """The answer's body when its status is `ok`, else None. `refusals` are answers the sale
        gives by design (a seat just taken, a place in line given up): not counted as errors."""
        with self.client.request(
            call.method,
            call.url,
            json=call.json,
            headers=call.headers,
            name=call.step,
            catch_response=True,
        ) as reply:
            if reply.status_code in ok or reply.status_code in refusals:
                reply.success()
            else:
                reply.failure(f"HTTP {reply.status_code}")
            return reply.json() if reply.status_code in ok and reply.content else None

    def _step(self, name: str, started: float) -> None:
        elapsed = (time.monotonic() - started) * 1000
        events.request.fire(  # type: ignore[no-untyped-call]  # locust is untyped
            request_type="STEP",
            name=name,
            response_time=elapsed,
            response_length=0,
            exception=None,
            context={},
        )

    def _sign_in(self) -> str | None:
        if SCENARIO.login == "minted":
            return minted_token(SETTINGS, self.person)
        self._call(self.api.sign_up(self.person.email, PASSWORD), (201, 409))
        body = self._call(self.api.login(self.person.email, PASSWORD))
        return access_token(body) if body else None

    @task
    def visit(self) -> None:
        if not self.visited:
            self.visited = True
            RECORDER.outcome(self._visit())

    def _visit(self) -> str:
        """The person's one visit; returns how it ended."""
        deadline = time.monotonic() + SCENARIO.time_limit_seconds
        token = self._sign_in()
        joined = self._call(self.api.join(token)) if token else None
        if token is None or joined is None:
            return "refused at join"
        started, place = time.monotonic(), place_from(joined)
        while place.state == QueueState.WAITING and time.monotonic() < deadline:
            time.sleep(1)
            polled = self._call(self.api.place(token), refusals=(404,))
            if polled is None:
                return "refused at poll"
            place = place_from(polled)
        if place.state == QueueState.WAITING:
            return "gave_up_waiting"
        if place.state != QueueState.ADMITTED or place.admission_token is None:
            return place.state.value
        self._step("admit", started)
        if pick_plan(SCENARIO.behaviour, self.rng.random()) == Plan.ABANDON:
            return "abandoned"
        seats_body = self._call(self.api.free_seats(token))
        free = free_seat_ids(seats_body) if seats_body else []
        if not free:
            return "sold_out"
        seats = self.rng.sample(free, min(SCENARIO.seats_per_buyer, len(free)))
        held_body = self._call(self.api.hold(token, place.admission_token, seats))
        if held_body is None:
            return "refused at hold"
        held, started = reservation_id(held_body), time.monotonic()
        RECORDER.reservations[held] = seen = SeenReservation(seats)
        while time.monotonic() < deadline:
            body = self._call(self.api.reservation(token, held))
            if body is not None:
                seen.status = reservation_status(body)
            if seen.status in TERMINAL_STATUSES:
                self._step("confirm", started)
                return seen.status.lower()
        return "unconfirmed"


def broken_thresholds(environment: Environment) -> list[str]:
    stats = environment.stats
    broken = []
    if stats.total.num_requests and stats.total.fail_ratio > SCENARIO.thresholds.error_rate:
        broken.append(
            f"error rate {stats.total.fail_ratio:.2%} above {SCENARIO.thresholds.error_rate:.2%}"
        )
    for step in STEPS:
        entry = stats.entries.get((step, "STEP")) or stats.entries.get((step, "POST"))
        if entry is None or not entry.num_requests:
            continue
        bound = SCENARIO.thresholds.latency_ms[step]
        for share, ceiling in ((0.95, bound.p95), (0.99, bound.p99)):
            value = entry.get_response_time_percentile(share)
            if value > ceiling:
                broken.append(f"{step} p{share * 100:g} {value:.0f} ms above {ceiling:g} ms")
    return broken


@events.quitting.add_listener  # type: ignore[untyped-decorator]  # locust is untyped
def _account(**_: object) -> None:
    print(f"visits: {dict(RECORDER.outcomes.most_common())}", file=sys.stderr)
    if RESERVATIONS_FILE:
        Path(RESERVATIONS_FILE).write_bytes(SEEN_RESERVATIONS.dump_json(RECORDER.reservations))


@events.quitting.add_listener  # type: ignore[untyped-decorator]  # locust is untyped
def _judge(environment: Environment, **_: object) -> None:
    broken = broken_thresholds(environment)
    for reason in broken:
        print(f"threshold broken: {reason}", file=sys.stderr)
    if broken:
        environment.process_exit_code = 1
