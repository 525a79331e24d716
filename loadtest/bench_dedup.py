"""Benchmark of the consumers' dedup memory: a million message ids through the time buckets of
`ProcessedIds` (what `ConsumerRunner` checks and marks) against a real Redis with a short window,
and the same ids through the single set it replaced, sampling Redis `INFO memory` as they go.

Sends the Redis commands of the dedup path directly, not through Kafka, and pipelined: each batch
checks every id in the current and previous bucket (`processed_key`) and marks the unseen ones
in the current bucket with the bucket's EXPIREAT, as `ProcessedIds` does one id at a time. On
this shared 2-core machine one call at a time reached about 500 ids/s (a million would take over
half an hour) and the broker adds nothing to what Redis holds. After the run `ProcessedIds`
itself must find the last id, so the layout driven here is the product's. Also measures the
memory one id costs as a set member and as a key of its own with an expiry (the scheme not
chosen). Run: `python -m loadtest.bench_dedup` (starts its own Redis) or with `--redis-url`.
"""

import argparse
import asyncio
import contextlib
import json
import os
import statistics
import sys
import time
from collections.abc import Awaitable, Callable, Sequence
from pathlib import Path
from typing import Any

import redis.asyncio as aioredis
from ticketing.common.dedup import ProcessedIds
from ticketing.common.redis_keys import processed_key

from loadtest.bench_common import (
    BenchmarkFailed,
    load_average,
    redis_server,
    run_dir,
    write_record,
)

PREFIX = "bench"
GROUP = "reservation"
SAMPLE_SECONDS = 1.0
BATCH = 500
# The old scheme's TTL, which every mark pushed back.
OLD_TTL_SECONDS = 7 * 24 * 3600
# Ids per measurement of the memory one id costs in each layout.
PER_ID_SAMPLE = 100_000

Dedup = Callable[[Sequence[str]], Awaitable[None]]


def _message_id(n: int) -> str:
    # As long as the platform's ids: `<reservation uuid>:reservation.paid`.
    return f"{n:032x}:reservation.paid"


async def _used_memory(client: aioredis.Redis) -> int:
    info = await client.info("memory")
    return int(info["used_memory"])


async def _push(
    client: aioredis.Redis, dedup: Dedup, ids: int, rate: float
) -> list[dict[str, float]]:
    """Send `ids` distinct ids through `dedup` at `rate` per second (each batch waits for its due
    time; a slow stretch is caught up, never skipped), sampling Redis's memory every second."""
    start = time.monotonic()
    done = 0

    async def sample() -> dict[str, float]:
        return {
            "seconds": round(time.monotonic() - start, 3),
            "ids": done,
            "used_memory": await _used_memory(client),
            "keys": int(await client.dbsize()),
        }

    async def sampler(samples: list[dict[str, float]]) -> None:
        while True:
            samples.append(await sample())
            await asyncio.sleep(SAMPLE_SECONDS)

    samples: list[dict[str, float]] = []
    sampling = asyncio.create_task(sampler(samples))
    for first in range(0, ids, BATCH):
        ahead = start + first / rate - time.monotonic()
        if ahead > 0:
            await asyncio.sleep(ahead)
        await dedup([_message_id(n) for n in range(first, min(ids, first + BATCH))])
        done = min(ids, first + BATCH)
    sampling.cancel()
    samples.append(await sample())
    return samples


def _buckets(client: aioredis.Redis, window: int) -> Dedup:
    async def dedup(batch: Sequence[str]) -> None:
        bucket = int(time.time()) // window
        current = processed_key(PREFIX, GROUP, bucket)
        previous = processed_key(PREFIX, GROUP, bucket - 1)
        async with client.pipeline(transaction=False) as pipe:
            for message_id in batch:
                pipe.sismember(current, message_id)
                pipe.sismember(previous, message_id)
            found = await pipe.execute()
        unseen = [m for i, m in enumerate(batch) if not (found[2 * i] or found[2 * i + 1])]
        if not unseen:
            return
        async with client.pipeline(transaction=True) as pipe:
            pipe.sadd(current, *unseen)
            pipe.expireat(current, (bucket + 2) * window)
            await pipe.execute()

    return dedup


def _single_set(client: aioredis.Redis) -> Dedup:
    key = f"{PREFIX}:processed:{{{GROUP}}}"

    async def dedup(batch: Sequence[str]) -> None:
        async with client.pipeline(transaction=False) as pipe:
            for message_id in batch:
                pipe.sismember(key, message_id)
            found = await pipe.execute()
        unseen = [m for m, seen in zip(batch, found, strict=True) if not seen]
        if not unseen:
            return
        async with client.pipeline(transaction=True) as pipe:
            pipe.sadd(key, *unseen)
            pipe.expire(key, OLD_TTL_SECONDS)
            await pipe.execute()

    return dedup


async def _bytes_per_id(client: aioredis.Redis) -> dict[str, float]:
    """Memory one id costs as a member of a bucket set, and as a key of its own with a TTL."""
    figures = {}
    layouts: dict[str, Callable[[aioredis.client.Pipeline, str], object]] = {
        "set_member": lambda pipe, m: pipe.sadd(f"{PREFIX}:processed:{{{GROUP}}}:0", m),
        "key_with_ttl": lambda pipe, m: pipe.set(
            f"{PREFIX}:processed:{GROUP}:{m}", 1, ex=OLD_TTL_SECONDS
        ),
    }
    for name, write in layouts.items():
        await client.flushall()
        before = await _used_memory(client)
        for start in range(0, PER_ID_SAMPLE, 1000):
            async with client.pipeline(transaction=False) as pipe:
                for n in range(start, start + 1000):
                    write(pipe, _message_id(n))
                await pipe.execute()
        figures[name] = round((await _used_memory(client) - before) / PER_ID_SAMPLE, 1)
    await client.flushall()
    return figures


def _summary(samples: list[dict[str, float]], settled_after: float) -> dict[str, float]:
    """Memory from the first sample to the last, and its median and spread once `settled_after`
    seconds had passed (two windows: the oldest bucket has expired by then)."""
    settled = [s["used_memory"] for s in samples if s["seconds"] >= settled_after]
    return {
        "first_used_memory": samples[0]["used_memory"],
        "last_used_memory": samples[-1]["used_memory"],
        "peak_used_memory": max(s["used_memory"] for s in samples),
        "settled_median_used_memory": statistics.median(settled) if settled else 0,
        "settled_min_used_memory": min(settled) if settled else 0,
        "settled_max_used_memory": max(settled) if settled else 0,
        "seconds": samples[-1]["seconds"],
        "ids": samples[-1]["ids"],
    }


async def bench(redis_url: str, ids: int, rate: float, window: int) -> dict[str, Any]:
    client = aioredis.Redis.from_url(redis_url)
    try:
        per_id = await _bytes_per_id(client)
        schemes: dict[str, Any] = {}
        for name, dedup in (
            ("buckets", _buckets(client, window)),
            ("single_set", _single_set(client)),
        ):
            await client.flushall()
            samples = await _push(client, dedup, ids, rate)
            if name == "buckets" and not await ProcessedIds(client, PREFIX, GROUP, window).seen(
                _message_id(ids - 1)
            ):
                raise BenchmarkFailed("ProcessedIds does not find the last id the benchmark marked")
            schemes[name] = {
                "summary": _summary(samples, 2 * window),
                "load_average": load_average(),
                "samples": samples,
            }
        await client.flushall()
    finally:
        await client.aclose()
    return {"bytes_per_id": per_id, "schemes": schemes}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m loadtest.bench_dedup", description=__doc__)
    parser.add_argument("--redis-url", default=os.environ.get("TICKETING_BENCH_REDIS_URL"))
    parser.add_argument("--ids", type=int, default=1_000_000)
    parser.add_argument("--rate", type=float, default=10_000.0, help="ids per second")
    parser.add_argument("--window", type=int, default=10, help="dedup window, seconds")
    parser.add_argument("--json", type=Path, help="also write the raw record to this file")
    args = parser.parse_args(argv)
    with contextlib.ExitStack() as stack:
        url = args.redis_url
        if url is None:
            url = stack.enter_context(
                redis_server(stack.enter_context(run_dir("bench-dedup-")))
            ).url
        figures = asyncio.run(bench(url, args.ids, args.rate, args.window))
    if args.json:
        record = {
            "ids": args.ids,
            "rate_per_second": args.rate,
            "window_seconds": args.window,
            "batch": BATCH,
            **figures,
        }
        write_record(args.json, "bench_dedup", record)
    print("bytes per id:", json.dumps(figures["bytes_per_id"]))
    for name, scheme in figures["schemes"].items():
        print(name, json.dumps(scheme["summary"]), f"load {scheme['load_average']:.1f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
