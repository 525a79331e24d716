"""Seat-hold throughput: `SeatHolds.hold` (the reservation service's all-or-none Lua, 1-4 seats)
driven at full speed by many asyncio clients, next to `redis-benchmark` running the same script
through EVALSHA against the same Redis in the same run.

    python -m loadtest.bench_hold [--runs 5] [--seconds 3] [--clients 50] [--processes 1 2]
        [--json FILE]

`--json` writes the raw record (`bench_common.write_record`): each run's figures and the medians.
"""

import argparse
import asyncio
import cProfile
import itertools
import pstats
import random
import time
import uuid
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any, cast

import redis.asyncio as aioredis
import uvloop
from ticketing.common.ratelimit import RateRule
from ticketing.common.redis_keys import SaleKeys
from ticketing.reservation.holds import SeatHolds, SeatsRefused
from ticketing.reservation.models import MAX_SEATS_PER_RESERVATION

from loadtest.bench_common import (
    Sample,
    load_average,
    markdown_table,
    median,
    redis_benchmark,
    redis_server,
    run_dir,
    spread,
    write_record,
)

PREFIX = "bench"
# Each hold is counted against its buyer's rate, as the service counts it; no buyer is refused.
UNLIMITED = RateRule("holds", limit=2**31 - 1, window_seconds=60)
HOLD_TTL_MS = 360_000
# Seat ids are zero-padded to 12 digits: the form redis-benchmark gives `__rand_int__`.
LOAD_SEATS = """
for i = tonumber(ARGV[1]), tonumber(ARGV[2]) - 1 do
  redis.call('HSET', KEYS[1], string.format('S%012d', i), 'free')
end
return 1
"""
# The ceiling picks seats at random, so it keeps to a tenth of this inventory to stay on the
# path where holds succeed (a refused hold is cheaper and would flatter the ceiling).
CEILING_SEATS = 1_000_000
CEILING_REQUESTS = 40_000


@dataclass(frozen=True)
class Slice:
    """What one client process does: its own seats, from a shared start time for `seconds`."""

    redis_url: str
    event_id: str
    first_seat: int
    seats: int
    clients: int
    start_at: float
    seconds: float


@dataclass(frozen=True)
class Outcome:
    held: int
    refused: int
    seconds: float


def seat_id(number: int) -> str:
    return f"S{number:012d}"


async def load_inventory(redis: aioredis.Redis, event_id: str, seats: int) -> None:
    key = SaleKeys(PREFIX, event_id).seats
    for start in range(0, seats, 100_000):
        await redis.eval(LOAD_SEATS, 1, key, start, min(start + 100_000, seats))


async def drive(work: Slice) -> Outcome:
    """`clients` concurrent callers hold 1-4 consecutive free seats each, as fast as they can."""
    redis = aioredis.Redis.from_url(work.redis_url, max_connections=work.clients)
    holds = SeatHolds(redis, PREFIX)
    numbers = itertools.count(work.first_seat)
    end_of_slice = work.first_seat + work.seats
    counts = {"held": 0, "refused": 0}

    async def client(rng: random.Random) -> None:
        while time.time() < work.start_at + work.seconds:
            seats = [next(numbers) for _ in range(rng.randint(1, 4))]
            if seats[-1] >= end_of_slice:
                return
            try:
                reservation_id = uuid.uuid4().hex
                await holds.hold(
                    work.event_id,
                    reservation_id,
                    f"u{reservation_id}",
                    [*map(seat_id, seats)],
                    HOLD_TTL_MS,
                    max_seats_per_buyer=MAX_SEATS_PER_RESERVATION,
                    rate=UNLIMITED,
                )
                counts["held"] += 1
            except SeatsRefused:
                counts["refused"] += 1

    try:
        await redis.ping()
        await asyncio.sleep(max(0.0, work.start_at - time.time()))
        started = time.monotonic()
        await asyncio.gather(*(client(random.Random(n)) for n in range(work.clients)))
        return Outcome(counts["held"], counts["refused"], time.monotonic() - started)
    finally:
        await redis.aclose()


def drive_in_process(work: Slice) -> Outcome:
    # uvloop: the event loop the services run on under uvicorn.
    return uvloop.run(drive(work))


def holds_per_second(
    redis_url: str, event_id: str, seats: int, clients: int, processes: int, seconds: float
) -> tuple[float, float]:
    """Holds/s of `processes` client processes together, and the share of holds refused."""
    start_at = time.time() + 2.0  # time for the processes to start and import
    share = seats // processes
    slices = [
        Slice(redis_url, event_id, p * share, share, clients, start_at, seconds)
        for p in range(processes)
    ]
    with ProcessPoolExecutor(max_workers=processes) as pool:
        outcomes = list(pool.map(drive_in_process, slices))
    held = sum(o.held for o in outcomes)
    refused = sum(o.refused for o in outcomes)
    return held / max(o.seconds for o in outcomes), refused / max(1, held + refused)


class RecordingRedis(aioredis.Redis):
    """Records the EVALSHA commands it sends, so the ceiling replays exactly what a hold sends."""

    sent: list[list[str]]

    async def evalsha(self, sha: str, numkeys: int, *keys_and_args: Any) -> Any:
        self.sent.append(["EVALSHA", sha, str(numkeys), *map(str, keys_and_args)])
        return await super().evalsha(sha, numkeys, *keys_and_args)


async def hold_command(url: str, event_id: str, seats: int) -> list[str]:
    """The command one `SeatHolds.hold` of `seats` seats sends, with the reservation, the user
    and the seats replaced by redis-benchmark's random placeholders."""
    redis = cast(RecordingRedis, RecordingRedis.from_url(url))
    redis.sent = []
    numbers = [seat_id(CEILING_SEATS + 4 * seats + n) for n in range(seats)]
    # A recording buyer of its own for each seat count: one buyer would pass the purchase limit.
    user = f"USER{seats}"
    try:
        await SeatHolds(redis, PREFIX).hold(
            event_id,
            "RESERVATION",
            user,
            numbers,
            HOLD_TTL_MS,
            max_seats_per_buyer=MAX_SEATS_PER_RESERVATION,
            rate=UNLIMITED,
        )
    finally:
        await redis.aclose()
    command = redis.sent[-1]
    for number in numbers:
        command = [arg.replace(number, "S__rand_int__") for arg in command]
    return [
        arg.replace("RESERVATION", "__rand_int__").replace(user, "u__rand_int__") for arg in command
    ]


async def ceiling(port: int, redis: aioredis.Redis, url: str, event_id: str) -> tuple[float, float]:
    """redis-benchmark EVALSHA of the hold script itself, 1-4 random seats, 50 clients; and the
    share of its holds refused (each successful hold has its entry in the sale's hold deadlines)."""
    elapsed = 0.0
    held = 0
    deadlines = SaleKeys(PREFIX, event_id).hold_deadlines
    for count in range(1, 5):
        command = await hold_command(url, event_id, count)
        recorded = await redis.zcard(deadlines)
        rate = redis_benchmark(port, command, CEILING_REQUESTS // 4, keyspace=CEILING_SEATS)
        elapsed += CEILING_REQUESTS // 4 / rate
        held += await redis.zcard(deadlines) - recorded
    return CEILING_REQUESTS / elapsed, 1 - held / CEILING_REQUESTS


@dataclass(frozen=True)
class Round:
    holds: dict[int, Sample]  # by number of client processes
    ceiling: Sample
    refused: float  # share of the clients' holds refused, worst of the process counts
    ceiling_refused: float


async def one_round(port: int, url: str, args: argparse.Namespace) -> Round:
    redis = aioredis.Redis.from_url(url)
    try:
        holds: dict[int, Sample] = {}
        refused = 0.0
        for processes in args.processes:
            event_id = uuid.uuid4().hex[:8]
            await load_inventory(redis, event_id, args.seats)
            rate, share = await asyncio.to_thread(
                holds_per_second, url, event_id, args.seats, args.clients, processes, args.seconds
            )
            holds[processes] = Sample(rate, load_average())
            refused = max(refused, share)
            await redis.flushdb()
        event_id = uuid.uuid4().hex[:8]
        # The seats the recorded holds take lie past the ones redis-benchmark picks from.
        await load_inventory(redis, event_id, CEILING_SEATS + 20)
        rate, ceiling_refused = await ceiling(port, redis, url, event_id)
        await redis.flushdb()
        return Round(holds, Sample(rate, load_average()), refused, ceiling_refused)
    finally:
        await redis.aclose()


def profile(url: str, args: argparse.Namespace) -> None:
    """One single-process run under cProfile: where the client process spends its time."""

    async def prepared() -> None:
        redis = aioredis.Redis.from_url(url)
        event_id = uuid.uuid4().hex[:8]
        await load_inventory(redis, event_id, args.seats)
        await redis.aclose()
        work = Slice(url, event_id, 0, args.seats, args.clients, time.time(), args.seconds)
        profiler = cProfile.Profile()
        profiler.enable()
        await drive(work)
        profiler.disable()
        pstats.Stats(profiler).sort_stats("tottime").print_stats(15)

    uvloop.run(prepared())


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m loadtest.bench_hold")
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--seconds", type=float, default=3.0)
    parser.add_argument("--clients", type=int, default=50, help="concurrent callers per process")
    parser.add_argument("--processes", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--seats", type=int, default=400_000, help="inventory per run")
    parser.add_argument("--profile", action="store_true", help="profile one run instead")
    parser.add_argument("--json", type=Path, help="also write the raw record to this file")
    args = parser.parse_args(argv)

    with run_dir("bench-hold-") as directory, redis_server(directory) as server:
        if args.profile:
            profile(server.url, args)
            return
        rounds = []
        for n in range(args.runs):
            result = asyncio.run(one_round(server.port, server.url, args))
            rounds.append(result)
            figures = ", ".join(f"{p} proc {s.value:,.0f}/s" for p, s in result.holds.items())
            print(
                f"run {n + 1}: {figures}; ceiling {result.ceiling.value:,.0f}/s; refused "
                f"{result.refused:.1%} (ceiling {result.ceiling_refused:.1%}); "
                f"load {load_average():.1f}",
                flush=True,
            )
    top = median([r.ceiling for r in rounds])
    rows = []
    for processes in args.processes:
        runs = [r.holds[processes] for r in rounds]
        figure = median(runs)
        rows.append(
            [
                f"SeatHolds.hold, {processes} client process(es) x {args.clients} callers",
                f"{figure.value:,.0f} holds/s ({spread(runs)})",
                f"{top.value:,.0f}/s",
                f"{figure.value / top.value:.0%}",
                f"{figure.load:.1f}",
            ]
        )
    print()
    print(
        f"median of {args.runs} runs of {args.seconds:g} s; ceiling: redis-benchmark -c 50 "
        f"EVALSHA of the same hold command, 1-4 random seats ({spread([r.ceiling for r in rounds])})"
    )
    print(markdown_table(["path", "figure (min..max)", "ceiling", "ratio", "load"], rows))
    if args.json:
        write_record(args.json, "bench_hold", record_figures(args, rounds))


def record_figures(args: argparse.Namespace, rounds: list[Round]) -> dict[str, Any]:
    """The raw record's figures: the settings, every run, and the medians the table shows."""
    ceiling = median([r.ceiling for r in rounds])
    return {
        "runs": args.runs,
        "seconds": args.seconds,
        "clients_per_process": args.clients,
        "ceiling_command": "redis-benchmark -c 50 EVALSHA of the same hold command",
        "each_run": [
            {
                "holds_per_second": {str(p): s.value for p, s in r.holds.items()},
                "ceiling_per_second": r.ceiling.value,
                "refused_share": r.refused,
                "ceiling_refused_share": r.ceiling_refused,
                "load": r.ceiling.load,
            }
            for r in rounds
        ],
        "median": {
            "holds_per_second": {
                str(p): median([r.holds[p] for r in rounds]).value for p in args.processes
            },
            "ceiling_per_second": ceiling.value,
            "load": ceiling.load,
        },
    }


if __name__ == "__main__":
    main()
