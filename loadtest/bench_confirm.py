"""Hold -> CONFIRMED latency through Kafka and payment: reservations created over HTTP at a steady
rate against the real reservation and payment services (`python -m ticketing ...` processes on
Redis, MariaDB and Kafka), next to a bare aiokafka producer -> consumer pair through the same
broker at the same rate, measured by the same harness.

    python -m loadtest.bench_confirm [--rate 500] [--seconds 10] [--runs 3] [--json PATH]

A reservation's latency is its `updated_at - created_at` once CONFIRMED: both are stamped by the
reservation service, right after the Lua hold and when the paid reservation commits. Each service
process's CPU time over the run, per confirmed reservation, is printed too: on a shared machine it
compares two builds better than the latency does; so are the database's statements a confirmed
reservation (the server's own counters, both services together), and the bare pair's CPU time
a message, the bench's own while it produces and consumes: the least a Kafka hop costs with
aiokafka at that rate, of which a confirmed reservation makes two. `--json` writes every run's
figures with the commit and the machine (the raw record the README quotes).
"""

import argparse
import asyncio
import os
import statistics
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Coroutine, Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from functools import partial
from pathlib import Path
from typing import Any

import aiohttp
import redis.asyncio as aioredis
from aiokafka import AIOKafkaConsumer
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine
from ticketing.common.kafka import ensure_topics
from ticketing.common.producer import RenewingProducer
from ticketing.common.redis_keys import SaleKeys
from ticketing.common.settings import CommonSettings
from ticketing.common.tokens import Principal, issue_access_token, issue_admission_token
from ticketing.common.topics import RESERVATION_REQUESTED, TopicFamily, TopicSpec
from ticketing_dev.ports import free_port
from ticketing_dev.process import ManagedProcess, http_ready
from ticketing_dev.stack import LocalStack

from loadtest.bench_common import (
    Sample,
    cpu_seconds,
    create_database,
    load_average,
    local_stack,
    markdown_table,
    median,
    run_dir,
    spread,
    write_record,
)

PREFIX = "bench"
REPO_ROOT = Path(__file__).resolve().parents[1]
SETTLE_SECONDS = 60.0


@dataclass(frozen=True)
class Latencies:
    p50_ms: float
    p99_ms: float
    count: int

    @classmethod
    def of(cls, seconds: list[float]) -> "Latencies":
        if len(seconds) < 2:
            return cls(float("nan"), float("nan"), len(seconds))
        cuts = statistics.quantiles(seconds, n=100, method="inclusive")
        return cls(statistics.median(seconds) * 1000, cuts[98] * 1000, len(seconds))


# Where a confirmed reservation's time went, from the timestamps the services write anyway.
STAGES_QUERY = text(
    "SELECT r.created_at, o.sent_at, p.created_at, p.updated_at, r.updated_at "
    "FROM reservations r "
    "JOIN reservation_outbox o ON o.`key` = r.id AND o.topic = :requested "
    "JOIN payments p ON p.reservation_id = r.id "
    "WHERE r.event_id = :event AND r.status = 'CONFIRMED'"
)
STAGES = (
    "outbox relay (hold -> sent)",
    "Kafka hop 1 + payment consumer (sent -> payment row)",
    "payment (row -> settled, incl. gateway)",
    "Kafka hop 2 + reservation consumer (settled -> CONFIRMED)",
)


# The server's statement counters, read before and after a run (both services share the server;
# the harness's own reads while it waits for the run to settle are a handful). "Questions" is
# every statement a client sent, COMMIT, ROLLBACK and SET included: the round trips.
STATEMENT_COUNTERS = (
    "Questions",
    "Com_select",
    "Com_insert",
    "Com_update",
    "Com_commit",
    "Com_rollback",
    "Com_set_option",
)
STATEMENTS_QUERY = text(
    "SHOW GLOBAL STATUS WHERE Variable_name IN ("
    + ", ".join(f"'{name}'" for name in STATEMENT_COUNTERS)
    + ")"
)


@dataclass(frozen=True)
class Confirmations:
    total: Latencies
    stages: dict[str, Latencies]


@dataclass(frozen=True)
class ConfirmRun:
    rate: float  # reservations created per second, as reached
    confirm: Confirmations
    pending: int  # created but not CONFIRMED when the run settled
    broker: Latencies
    # The bench's own CPU time per message of the bare pair: one produce and one consume, the
    # least a Kafka hop costs with aiokafka at this rate (a confirmed reservation makes two).
    broker_cpu_ms: float
    load: float
    cpu_ms: dict[str, float]  # each service's CPU time per confirmed reservation
    statements: dict[str, float]  # the database's statement counters per confirmed reservation


@dataclass(frozen=True)
class Services:
    url: str  # the reservation service's
    pids: dict[str, int]


async def paced(
    rate: float, seconds: float, act: Callable[[int], Coroutine[Any, Any, None]]
) -> float:
    """Start `act(i)` at i/rate seconds, open loop (a slow answer does not delay the next start);
    the rate reached, counting the time the last start was late."""
    total = int(rate * seconds)
    started = time.monotonic()
    tasks = []
    for i in range(total):
        delay = started + i / rate - time.monotonic()
        if delay > 0:
            await asyncio.sleep(delay)
        tasks.append(asyncio.create_task(act(i)))
    elapsed = time.monotonic() - started
    await asyncio.gather(*tasks)
    return total / max(elapsed, seconds * (total - 1) / total)


async def broker_latency(bootstrap: str, rate: float, seconds: float) -> tuple[Latencies, float]:
    """Produce timestamped messages at `rate` (the platform's producer settings) and consume them
    in a group, as the services do; each message's produce -> consume time, and this process's
    CPU time a message (ms) while it produced and consumed them."""
    topic = f"{PREFIX}.ceiling.{uuid.uuid4().hex[:8]}"
    # The partitions the committed figures were measured with, whatever the settings say.
    await ensure_topics(bootstrap, {topic: TopicSpec(TopicFamily.MAIN, 3, 1)})
    consumer = AIOKafkaConsumer(
        topic, bootstrap_servers=bootstrap, group_id=topic, auto_offset_reset="earliest"
    )
    producer = RenewingProducer(bootstrap, "bench")
    await consumer.start()
    await producer.start()
    latencies: list[float] = []
    expected = int(rate * seconds)

    async def consume() -> None:
        while len(latencies) < expected:
            batch = await consumer.getmany(timeout_ms=500, max_records=500)
            now = time.time()
            latencies.extend(now - float(r.value) for rs in batch.values() for r in rs)

    async def send(_: int) -> None:
        await producer.send(topic, str(time.time()).encode())

    try:
        cpu_before = time.process_time()
        reader = asyncio.create_task(consume())
        await paced(rate, seconds, send)
        await asyncio.wait_for(reader, SETTLE_SECONDS)
        cpu_ms = (time.process_time() - cpu_before) * 1000 / max(len(latencies), 1)
    finally:
        await producer.stop()
        await consumer.stop()
    return Latencies.of(latencies), cpu_ms


def service_env(stack: LocalStack, database_url: str, gateway_latency: float) -> dict[str, str]:
    return {
        **stack.env(),
        "TICKETING_DATABASE_URL": database_url,
        "TICKETING_REDIS_KEY_PREFIX": PREFIX,
        "TICKETING_KAFKA_TOPIC_PREFIX": f"{PREFIX}.",
        "TICKETING_PAYMENT_GATEWAY_LATENCY_SECONDS": str(gateway_latency),
        "TICKETING_LOG_LEVEL": "WARNING",
    }


@contextmanager
def services(directory: Path, env: dict[str, str]) -> Iterator[Services]:
    """The payment and reservation services as processes."""
    subprocess.run(
        [sys.executable, "-m", "ticketing", "migrate"],
        env={**os.environ, **env},
        cwd=REPO_ROOT,
        check=True,
        capture_output=True,
        timeout=300,
    )
    processes: list[ManagedProcess] = []
    port = 0
    try:
        for name in ("payment", "reservation"):
            port = free_port()
            process = ManagedProcess(
                name,
                [sys.executable, "-m", "ticketing", name, "--port", str(port)],
                directory / "logs" / f"{name}.log",
                env,
                REPO_ROOT,
            )
            process.start()
            processes.append(process)
            process.wait_ready(partial(http_ready, port), 120)
        pids = {p.name: p.pid for p in processes if p.pid is not None}
        yield Services(f"http://127.0.0.1:{port}", pids)
    finally:
        for process in processes:
            process.stop()


async def open_sale(redis: aioredis.Redis, seats: int) -> str:
    event_id = uuid.uuid4().hex[:8]
    key = SaleKeys(PREFIX, event_id).seats
    async with redis.pipeline(transaction=False) as pipe:
        for n in range(seats):
            pipe.hset(key, f"S{n}", "free")
        await pipe.execute()
    return event_id


def buyers(settings: CommonSettings, event_id: str, count: int) -> list[dict[str, str]]:
    """Headers of `count` distinct users the waiting room admitted to the sale."""
    headers = []
    for _ in range(count):
        user_id = uuid.uuid4().hex
        access = issue_access_token(settings, Principal(user_id, f"{user_id}@example.org", ()))
        admission, _ = issue_admission_token(settings, user_id, event_id, ttl_seconds=600)
        headers.append({"Authorization": f"Bearer {access}", "X-Admission-Token": admission})
    return headers


async def settled(engine: AsyncEngine, event_id: str) -> int:
    """Wait until every reservation of the sale is CONFIRMED (or time runs out); how many not.

    Counted in the database, not from the replies: past the service's capacity a request the
    client gave up on may still have created its reservation.
    """
    query = text(
        "SELECT COUNT(*), COALESCE(SUM(status = 'CONFIRMED'), 0) FROM reservations "
        "WHERE event_id = :event"
    )
    deadline = time.monotonic() + SETTLE_SECONDS
    while True:
        async with engine.connect() as conn:
            created, confirmed = (await conn.execute(query, {"event": event_id})).one()
        if confirmed >= created or time.monotonic() > deadline:
            return int(created - confirmed)
        await asyncio.sleep(0.5)


async def statement_counts(engine: AsyncEngine) -> dict[str, int]:
    async with engine.connect() as conn:
        rows = (await conn.execute(STATEMENTS_QUERY)).all()
    return {str(name): int(value) for name, value in rows}


async def confirmations(engine: AsyncEngine, event_id: str) -> Confirmations:
    async with engine.connect() as conn:
        rows = (
            await conn.execute(
                STAGES_QUERY, {"event": event_id, "requested": RESERVATION_REQUESTED}
            )
        ).all()
    total = Latencies.of([(row[4] - row[0]).total_seconds() for row in rows])
    stages = {
        name: Latencies.of([(row[n + 1] - row[n]).total_seconds() for row in rows])
        for n, name in enumerate(STAGES)
    }
    return Confirmations(total, stages)


async def one_run(
    processes: Services, settings: CommonSettings, stack: LocalStack, rate: float, seconds: float
) -> ConfirmRun:
    redis = aioredis.Redis.from_url(stack.redis.url)
    engine = create_async_engine(settings.database_url, pool_size=2)
    total = int(rate * seconds)
    try:
        event_id = await open_sale(redis, 4 * total)
        headers = buyers(settings, event_id, total)
        created: list[int] = []
        cpu_before = {name: cpu_seconds([pid]) for name, pid in processes.pids.items()}
        statements_before = await statement_counts(engine)
        # aiohttp, not httpx: httpx's pool scans every waiting request on each release, so at
        # 500/s with requests queued the client took a core of the two and starved the services.
        async with aiohttp.ClientSession(
            processes.url,
            connector=aiohttp.TCPConnector(limit=200),
            timeout=aiohttp.ClientTimeout(total=10),
        ) as client:

            async def reserve(i: int) -> None:
                seats = [f"S{4 * i + n}" for n in range(1 + i % 4)]
                try:
                    async with client.post(
                        f"/events/{event_id}/reservations",
                        json={"seat_ids": seats},
                        headers=headers[i],
                    ) as reply:
                        if reply.status == 201:
                            created.append(i)
                except (aiohttp.ClientError, TimeoutError):
                    # Past the service's capacity requests time out; the rate reached says so.
                    return

            reached = await paced(rate, seconds, reserve)
        pending = await settled(engine, event_id)
        statements_after = await statement_counts(engine)
        confirm = await confirmations(engine, event_id)
        confirmed = max(confirm.total.count, 1)
        cpu_ms = {
            name: (cpu_seconds([pid]) - cpu_before[name]) * 1000 / confirmed
            for name, pid in processes.pids.items()
        }
        statements = {
            name: (statements_after[name] - statements_before[name]) / confirmed
            for name in STATEMENT_COUNTERS
        }
        load = load_average()
        broker, broker_cpu_ms = await broker_latency(stack.kafka.bootstrap, rate, seconds)
        return ConfirmRun(
            min(reached, len(created) / seconds),
            confirm,
            pending,
            broker,
            broker_cpu_ms,
            load,
            cpu_ms,
            statements,
        )
    finally:
        await redis.aclose()
        await engine.dispose()


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m loadtest.bench_confirm")
    parser.add_argument("--rate", type=float, default=500.0, help="reservations per second")
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument(
        "--gateway-latency", type=float, default=0.05, help="simulated payment provider (s)"
    )
    parser.add_argument("--json", type=Path, help="also write the raw record to this file")
    args = parser.parse_args(argv)

    runs: list[ConfirmRun] = []
    with run_dir("bench-confirm-") as directory, local_stack(directory / "servers") as stack:
        database_url = f"{stack.mariadb.url}/bench"
        asyncio.run(create_database(database_url))
        env = service_env(stack, database_url, args.gateway_latency)
        settings = CommonSettings.model_validate(
            {k.removeprefix("TICKETING_").lower(): v for k, v in env.items()}
        )
        with services(directory, env) as processes:
            for n in range(args.runs):
                run = asyncio.run(one_run(processes, settings, stack, args.rate, args.seconds))
                runs.append(run)
                print(
                    f"run {n + 1}: {run.rate:,.0f}/s created; hold->CONFIRMED p50 "
                    f"{run.confirm.total.p50_ms:.0f} ms p99 {run.confirm.total.p99_ms:.0f} ms "
                    f"({run.confirm.total.count} confirmed, {run.pending} not); broker p50 "
                    f"{run.broker.p50_ms:.0f} ms p99 {run.broker.p99_ms:.0f} ms, CPU "
                    f"{run.broker_cpu_ms:.2f} ms a message; CPU a "
                    f"reservation: {cpu_text(run.cpu_ms)}; database statements a confirmed "
                    f"reservation: {statements_text(run.statements)}; load {run.load:.1f}",
                    flush=True,
                )
    p99 = [Sample(r.confirm.total.p99_ms, r.load) for r in runs]
    broker_p99 = [Sample(r.broker.p99_ms, r.load) for r in runs]
    figure, ceiling = median(p99), median(broker_p99)
    rate = median([Sample(r.rate, r.load) for r in runs])
    p50 = median([Sample(r.confirm.total.p50_ms, r.load) for r in runs])
    broker_p50 = median([Sample(r.broker.p50_ms, r.load) for r in runs])
    print()
    print(
        f"median of {args.runs} runs of {args.seconds:g} s at {args.rate:g}/s asked, "
        f"{rate.value:,.0f}/s reached; payment gateway latency {args.gateway_latency * 1000:g} ms"
    )
    print(
        markdown_table(
            ["path", "p50", "p99 (min..max)", "ceiling p50 / p99", "ratio (p99)", "load"],
            [
                [
                    "hold -> CONFIRMED (2 Kafka hops + payment)",
                    f"{p50.value:.0f} ms",
                    f"{figure.value:.0f} ms ({spread(p99)})",
                    f"{broker_p50.value:.0f} / {ceiling.value:.0f} ms (1 hop)",
                    f"{figure.value / ceiling.value:.1f}x",
                    f"{figure.load:.1f}",
                ],
                *(stage_row(name, runs) for name in STAGES),
            ],
        )
    )
    cpu = {name: statistics.median(r.cpu_ms[name] for r in runs) for name in runs[0].cpu_ms}
    print(f"service CPU a confirmed reservation (median): {cpu_text(cpu)}")
    broker_cpu = statistics.median(r.broker_cpu_ms for r in runs)
    print(f"bare Kafka hop, produce + consume, CPU a message (median): {broker_cpu:.2f} ms")
    statements = {
        name: statistics.median(r.statements[name] for r in runs) for name in STATEMENT_COUNTERS
    }
    print(f"database statements a confirmed reservation (median): {statements_text(statements)}")
    if args.json:
        write_record(
            args.json,
            "bench_confirm",
            {
                "settings": {
                    key: getattr(args, key)
                    for key in ("rate", "seconds", "runs", "gateway_latency")
                },
                "runs": [asdict(run) for run in runs],
                "medians": {
                    "cpu_ms_a_confirmed_reservation": cpu,
                    "broker_cpu_ms_a_message": broker_cpu,
                    "statements_a_confirmed_reservation": statements,
                    "rate": rate.value,
                },
            },
        )


def cpu_text(cpu_ms: dict[str, float]) -> str:
    return ", ".join(f"{name} {ms:.2f} ms" for name, ms in cpu_ms.items())


def statements_text(statements: dict[str, float]) -> str:
    kinds = ", ".join(
        f"{name.removeprefix('Com_')} {statements[name]:.1f}" for name in STATEMENT_COUNTERS[1:]
    )
    return f"{statements['Questions']:.1f} ({kinds})"


def stage_row(name: str, runs: list[ConfirmRun]) -> list[str]:
    """One stage of hold -> CONFIRMED: medians over the runs of its p50 and p99."""
    p50 = statistics.median(r.confirm.stages[name].p50_ms for r in runs)
    p99 = statistics.median(r.confirm.stages[name].p99_ms for r in runs)
    return [f"- {name}", f"{p50:.0f} ms", f"{p99:.0f} ms", "", "", ""]


if __name__ == "__main__":
    main()
