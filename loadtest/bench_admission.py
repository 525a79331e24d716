"""Benchmark of the admission rate: two admission worker processes against one real Redis.

Fills a sale's line, runs two worker replicas at TPS 200 for a measured minute, then changes the
TPS to 400 through the sale's runtime configuration and times how long the rate takes to follow.
Run: `python -m loadtest.bench_admission` (starts its own Redis) or with `--redis-url`;
`--json FILE` writes the raw record (`bench_common.write_record`).
"""

import argparse
import asyncio
import json
import multiprocessing
import os
import sys
import tempfile
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import redis.asyncio as aioredis
from ticketing.common.sale_config import SaleConfig, write_sale_config
from ticketing.queue.admission import AdmissionWorker
from ticketing.queue.settings import QueueSettings
from ticketing.queue.store import SaleQueue
from ticketing_dev.ports import free_port
from ticketing_dev.servers import RedisServer

from loadtest.bench_common import load_average, write_record

EVENT = "bench-sale"
SAMPLE_SECONDS = 0.25
WINDOW_SECONDS = 2.0


@dataclass(frozen=True)
class Sample:
    at: float  # Redis TIME, seconds
    admitted: int


def _settings(redis_url: str, prefix: str) -> QueueSettings:
    # Nobody in the benchmark's line goes away: a huge away threshold keeps every user present.
    return QueueSettings(
        redis_url=redis_url,
        redis_key_prefix=prefix,
        queue_away_after_seconds=1e9,
        queue_grace_seconds=1e9,
    )


def _worker_process(redis_url: str, prefix: str) -> None:
    async def run() -> None:
        client = aioredis.Redis.from_url(redis_url)
        await AdmissionWorker(client, _settings(redis_url, prefix)).run()

    asyncio.run(run())


async def _fill(queue: SaleQueue, sale: SaleConfig, people: int) -> None:
    for start in range(0, people, 50):
        batch = range(start, min(people, start + 50))
        await asyncio.gather(*(queue.join(f"person-{n:06d}", sale) for n in batch))


async def _sample(client: aioredis.Redis, queue: SaleQueue) -> Sample:
    # One transaction, so the time and the count belong to the same instant.
    async with client.pipeline(transaction=True) as pipe:
        pipe.time()
        pipe.hget(queue.keys.serving, "admitted")
        (seconds, micros), admitted = await pipe.execute()
    return Sample(seconds + micros / 1e6, int(admitted or 0))


async def _record(client: aioredis.Redis, queue: SaleQueue, seconds: float) -> list[Sample]:
    samples = [await _sample(client, queue)]
    while samples[-1].at - samples[0].at < seconds:
        await asyncio.sleep(SAMPLE_SECONDS)
        samples.append(await _sample(client, queue))
    return samples


def _rate(first: Sample, last: Sample) -> float:
    return (last.admitted - first.admitted) / (last.at - first.at)


def _follow_seconds(samples: list[Sample], changed_at: float, target: float) -> float | None:
    """Seconds from the change until the rate over every later window is within 5 %.

    Windows are 2 s long: each worker call admits a tick's worth at once, so shorter windows
    measure the tick boundaries, not the rate."""
    windows = []
    for i, start in enumerate(samples):
        end = next((s for s in samples[i:] if s.at - start.at >= WINDOW_SECONDS), None)
        if end is not None:
            windows.append((start.at, abs(_rate(start, end) - target) / target <= 0.05))
    for i, (at, ok) in enumerate(windows):
        if at >= changed_at and ok and all(good for _, good in windows[i:]):
            return max(0.0, at - changed_at)
    return None


async def bench(redis_url: str, seconds: float, tps: float, new_tps: float) -> dict[str, object]:
    prefix = f"bench{uuid.uuid4().hex[:8]}"
    client = aioredis.Redis.from_url(redis_url)
    queue = SaleQueue(client, prefix, EVENT)
    now = datetime.now(UTC)
    sale = SaleConfig(
        event_id=EVENT,
        tps=tps,
        max_active=10_000_000,
        session_ttl_seconds=3600,
        opens_at=now - timedelta(minutes=1),
        closes_at=now + timedelta(hours=2),
    )
    await write_sale_config(client, prefix, sale)
    people = int(tps * (seconds + 5) + new_tps * 20)
    print(f"filling the line with {people} people ...", file=sys.stderr)
    await _fill(queue, sale, people)
    workers = [
        multiprocessing.Process(target=_worker_process, args=(redis_url, prefix), daemon=True)
        for _ in range(2)
    ]
    for worker in workers:
        worker.start()
    try:
        await asyncio.sleep(2.0)  # warm-up: both replicas ticking
        print(f"measuring {seconds:g} s at TPS {tps:g} with 2 worker processes", file=sys.stderr)
        steady = await _record(client, queue, seconds)
        changed_at = (await _sample(client, queue)).at
        await write_sale_config(client, prefix, sale.model_copy(update={"tps": new_tps}))
        print(f"TPS changed to {new_tps:g}; measuring 15 s", file=sys.stderr)
        after = await _record(client, queue, 15.0)
    finally:
        for worker in workers:
            worker.terminate()
            worker.join()
        await client.aclose()
    rate = _rate(steady[0], steady[-1])
    follow = _follow_seconds(after, changed_at, new_tps)
    settled = [s for s in after if s.at >= changed_at + (follow or 0.0) + 1.0]
    return {
        "workers": 2,
        "target_tps": tps,
        "measured_seconds": round(steady[-1].at - steady[0].at, 2),
        "admitted": steady[-1].admitted - steady[0].admitted,
        "measured_tps": round(rate, 2),
        "error_percent": round(100 * (rate - tps) / tps, 3),
        "new_tps": new_tps,
        "followed_within_seconds": None if follow is None else round(follow, 2),
        "measured_tps_after_change": round(_rate(settled[0], settled[-1]), 2)
        if len(settled) > 1
        else None,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m loadtest.bench_admission", description=__doc__)
    parser.add_argument("--redis-url", default=os.environ.get("TICKETING_BENCH_REDIS_URL"))
    parser.add_argument("--seconds", type=float, default=60.0)
    parser.add_argument("--tps", type=float, default=200.0)
    parser.add_argument("--new-tps", type=float, default=400.0)
    parser.add_argument("--json", type=Path, help="also write the raw record to this file")
    args = parser.parse_args(argv)
    server = None
    if args.redis_url is None:
        server = RedisServer(Path(tempfile.mkdtemp(prefix="bench-redis-")), free_port())
        server.start()
        server.wait_ready()
    try:
        url = args.redis_url or (server.url if server else "")
        figures = asyncio.run(bench(url, args.seconds, args.tps, args.new_tps))
    finally:
        if server is not None:
            server.process.stop()
    figures["load"] = round(load_average(), 2)
    print(json.dumps(figures, indent=2))
    if args.json:
        write_record(args.json, "bench_admission", figures)
    within = abs(float(str(figures["error_percent"]))) <= 2.0
    follow = figures["followed_within_seconds"]
    followed = follow is not None and float(str(follow)) <= 5.0
    print(
        f"rate within 2 %: {'yes' if within else 'NO'}; follows a TPS change within 5 s: "
        f"{'yes' if followed else 'NO'}",
        file=sys.stderr,
    )
    return 0 if within and followed else 1


if __name__ == "__main__":
    sys.exit(main())
