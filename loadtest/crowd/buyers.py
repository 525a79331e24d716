"""The crowd as asyncio buyers: each arrives on the scenario's ramp and tries to buy seats.

A buyer signs in, joins the waiting room, waits (WebSocket or polling), and once admitted
walks away or holds seats, then watches its reservation until payment (run by the platform
over Kafka) confirms or fails it, or the hold expires.
Everything it sees goes to the Recorder; every wait is bounded by the scenario's time limit.
"""

import asyncio
import contextlib
import json
import random
import time
from dataclasses import dataclass
from typing import Any

import aiohttp
from ticketing.common.settings import CommonSettings

from loadtest.crowd.behaviour import Plan, pick_plan
from loadtest.crowd.client import (
    TERMINAL_STATUSES,
    Call,
    Place,
    QueueState,
    SaleApi,
    access_token,
    free_seat_ids,
    place_from,
    reservation_id,
    reservation_status,
)
from loadtest.crowd.identity import PASSWORD, Person, minted_token
from loadtest.crowd.recorder import Recorder, SeenReservation
from loadtest.crowd.waiters import wait_on_socket
from loadtest.scenarios import Scenario

POLL_SECONDS = 1.0
HOLD_ATTEMPTS = 3
# Requests in flight at once per crowd process; the others wait on a semaphore.
HTTP_CONNECTIONS = 256
# aiohttp, not httpx: httpx took 1-2 ms of CPU a request, and the crowd, the busiest process of
# a reference-5k run (55 % of the run's CPU), spent most of it there.
TIMEOUT = aiohttp.ClientTimeout(total=30)
KEEPALIVE_SECONDS = 3.0
OUTCOME_OF_STATUS = {"CONFIRMED": "bought", "FAILED": "payment_failed", "PENDING": "unconfirmed"}


@dataclass(frozen=True)
class Answer:
    """A reply, read whole."""

    status: int
    body: bytes
    etag: str | None

    def json(self) -> Any:
        return json.loads(self.body)


class Refused(Exception):
    """The platform answered a step with an error status (0: no answer); the buyer gives up."""

    def __init__(self, step: str, status: int, detail: str) -> None:
        super().__init__(f"{step}: HTTP {status} {detail}".rstrip())
        self.status = status


@dataclass
class Buyer:
    api: SaleApi
    http: aiohttp.ClientSession
    scenario: Scenario
    settings: CommonSettings
    recorder: Recorder
    person: Person
    rng: random.Random
    deadline: float
    slots: asyncio.Semaphore
    # For the reads that wait on the server until the reservation settles (`SaleApi.reservation`).
    watching: aiohttp.ClientSession

    async def call(
        self, call: Call, expected: tuple[int, ...] = (200, 201), refusals: tuple[int, ...] = ()
    ) -> Any:
        """The answer's body; raises Refused otherwise. `refusals` are answers the sale gives by
        design (a seat just taken, a place in line given up): they are not counted as errors."""
        reply = await self.exchange(call, expected, refusals)
        return reply.json() if reply.body else None

    async def exchange(
        self, call: Call, expected: tuple[int, ...] = (200, 201), refusals: tuple[int, ...] = ()
    ) -> Answer:
        """The answer, when its status is expected; raises Refused otherwise.

        A read that waits on the server is a person's own browser waiting: it takes no slot of
        the shared connections, or the buyers waiting for payment would stall everyone else."""
        waits = call.step == "confirm"
        async with contextlib.nullcontext() if waits else self.slots:
            started = time.monotonic()
            try:
                async with (self.watching if waits else self.http).request(
                    call.method, call.url, json=call.json, headers=call.headers
                ) as response:
                    reply = Answer(
                        response.status, await response.read(), response.headers.get("ETag")
                    )
            except (aiohttp.ClientError, TimeoutError) as exc:
                self.recorder.answer(False)
                self.recorder.failed(f"{call.step}: {type(exc).__name__}")
                raise Refused(call.step, 0, type(exc).__name__) from exc
        ok = reply.status in expected
        by_design = reply.status in refusals
        self.recorder.answer(ok or by_design)
        if not ok and not by_design:
            self.recorder.failed(f"{call.step}: HTTP {reply.status} {_detail(reply)}")
        if call.step in ("join", "hold"):
            self.recorder.latency(call.step, started)
        if not ok:
            raise Refused(call.step, reply.status, _detail(reply))
        return reply

    async def sign_in(self) -> str:
        if self.scenario.login == "minted":
            return minted_token(self.settings, self.person)
        await self.call(self.api.sign_up(self.person.email, PASSWORD), (201, 409))
        return access_token(await self.call(self.api.login(self.person.email, PASSWORD)))

    async def wait_in_line(self, token: str) -> Place | None:
        joined = place_from(await self.call(self.api.join(token)))
        self.recorder.saw(joined)
        if joined.state != QueueState.WAITING:
            return joined
        if self.rng.random() < self.scenario.websocket_share:
            return await wait_on_socket(
                self.api.waiting_socket(token), self.recorder, self.deadline
            )
        while time.monotonic() < self.deadline:
            await asyncio.sleep(POLL_SECONDS)
            place = place_from(await self.call(self.api.place(token), refusals=(404,)))
            self.recorder.saw(place)
            if place.state != QueueState.WAITING:
                return place
        return None

    async def hold_seats(self, token: str, admission_token: str) -> str | None:
        """Pick free seats on the map and hold them; when someone was faster, pick others, as
        a person would: from the same map less the seats just lost, unless the map changed
        (the seat service answers 304 to the map's ETag while it has not)."""
        free: list[str] = []
        etag: str | None = None
        for _ in range(HOLD_ATTEMPTS):
            seat_map = await self.exchange(self.api.free_seats(token, etag), (200, 304))
            if seat_map.status == 200:
                free, etag = free_seat_ids(seat_map.json()), seat_map.etag
            if not free:
                return None
            seats = self.rng.sample(free, min(self.scenario.seats_per_buyer, len(free)))
            try:
                body = await self.call(
                    self.api.hold(token, admission_token, seats), refusals=(409,)
                )
            except Refused as refused:
                if refused.status == 409:
                    free = [seat for seat in free if seat not in seats]
                    continue
                raise
            held = reservation_id(body)
            self.recorder.reservations[held] = SeenReservation(seats)
            return held
        return None

    async def settle(self, token: str, held: str) -> str:
        """The reservation's final status as its buyer reads it, or PENDING at the deadline."""
        started = time.monotonic()
        while time.monotonic() < self.deadline:
            status = reservation_status(await self.call(self.api.reservation(token, held)))
            self.recorder.reservations[held].status = status
            if status in TERMINAL_STATUSES:
                self.recorder.latency("confirm", started)
                return status
        return "PENDING"

    async def run(self) -> str:
        """The buyer's whole visit; returns its outcome."""
        token = await self.sign_in()
        joined_at = time.monotonic()
        self.recorder.waiting += 1
        try:
            place = await self.wait_in_line(token)
        finally:
            self.recorder.waiting -= 1
        if place is None:
            return "gave_up_waiting"
        if place.state != QueueState.ADMITTED or place.admission_token is None:
            return place.state.value
        self.recorder.latency("admit", joined_at)
        self.recorder.admitted()
        self.recorder.active += 1
        try:
            return await self.shop(token, place.admission_token)
        finally:
            self.recorder.active -= 1

    async def shop(self, token: str, admission_token: str) -> str:
        if pick_plan(self.scenario.behaviour, self.rng.random()) == Plan.ABANDON:
            return "abandoned"
        held = await self.hold_seats(token, admission_token)
        if held is None:
            return "sold_out"
        status = await self.settle(token, held)
        return OUTCOME_OF_STATUS.get(status, status.lower())


async def run_shard(
    api: SaleApi,
    scenario: Scenario,
    settings: CommonSettings,
    recorder: Recorder,
    run_id: str,
    shard: int = 0,
    shards: int = 1,
    seed: int = 7,
) -> None:
    """Send the people of the scenario's crowd whose index is `shard` modulo `shards`, each at
    their arrival time counted from `recorder.started`; returns when each of them finished or
    the time limit passed."""
    rng = random.Random(seed)
    deadline = recorder.started + scenario.time_limit_seconds
    slots = asyncio.Semaphore(HTTP_CONNECTIONS)
    # Idle connections are dropped before uvicorn's 5-s keep-alive ends them: reusing one the
    # server is closing at that moment failed requests (ServerDisconnectedError) in a run.
    connector = aiohttp.TCPConnector(limit=HTTP_CONNECTIONS, keepalive_timeout=KEEPALIVE_SECONDS)
    unlimited = aiohttp.TCPConnector(limit=0, keepalive_timeout=KEEPALIVE_SECONDS)
    async with (
        aiohttp.ClientSession(connector=connector, timeout=TIMEOUT) as http,
        aiohttp.ClientSession(connector=unlimited, timeout=TIMEOUT) as watching,
    ):

        async def arrive(index: int, offset: float, buyer_seed: float) -> None:
            await asyncio.sleep(recorder.started + offset - time.monotonic())
            recorder.arrive()
            buyer = Buyer(
                api,
                http,
                scenario,
                settings,
                recorder,
                Person(run_id, index),
                random.Random(buyer_seed),
                deadline,
                slots,
                watching,
            )
            try:
                recorder.outcome(await buyer.run())
            except Refused as refused:
                recorder.outcome(f"refused at {refused}")

        # Every shard draws every person's seed, so a person behaves the same in any split.
        people = [(i, offset, rng.random()) for i, offset in enumerate(scenario.arrival.offsets())]
        tasks = [asyncio.create_task(arrive(*person)) for person in people[shard::shards]]
        _, unfinished = await asyncio.wait(tasks, timeout=max(deadline + 5 - time.monotonic(), 0))
        for task in unfinished:
            task.cancel()
        await asyncio.gather(*unfinished, return_exceptions=True)
        recorder.outcomes["unfinished"] += len(unfinished)


def _detail(reply: Answer) -> str:
    """The refusal's reason, as FastAPI services put it in "detail", kept short for the report."""
    try:
        body = reply.json()
    except ValueError:
        return ""
    detail = body.get("detail", "") if isinstance(body, dict) else ""
    return str(detail)[:80]
