"""What SQLAlchemy adds to the reservation's own database write: a PENDING reservation and its
outbox row, inserted and committed, done four ways by one process on one MariaDB:

- `core`: SQLAlchemy Core, as `ReservationService.reserve` wrote it until 2026-12-02: `insert()`
  of the table models through the async engine (`engine.begin()`);
- `compiled`: the same two INSERT statements compiled once from the same models, their values
  converted by the columns' own bind processors, run by `exec_driver_sql` on the same engine;
- `prepared`: as the service writes it now: the same compiled statements on the asyncmy
  connection under a connection taken from the engine's pool (`ticketing.common.prepared`),
  SQLAlchemy only handing the connection out and taking it back;
- `driver`: the same on one asyncmy connection of its own, no SQLAlchemy at all: the floor.

    python -m loadtest.bench_statements [--writes 1000] [--rounds 5] [--json PATH]

The modes take turns, round after round, and each round's figure is the process's CPU time (and
wall time) a write; every write of every mode inserts a reservation of its own. The row values
are built before a round starts, so the figures are the write alone.
"""

import argparse
import asyncio
import statistics
import time
from collections.abc import Awaitable, Callable
from dataclasses import asdict, dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

import asyncmy
from sqlalchemy import insert
from sqlalchemy.ext.asyncio import AsyncEngine
from ticketing.common.db import make_engine
from ticketing.common.prepared import driver_transaction
from ticketing.common.sqltypes import utcnow
from ticketing.migrations.run import upgrade
from ticketing.reservation import messages
from ticketing.reservation.models import (
    OutboxMessage,
    Reservation,
    ReservationStatus,
    new_reservation_id,
)
from ticketing.reservation.statements import ReservationStatements
from ticketing_dev.ports import free_port
from ticketing_dev.servers import MariaDBServer

from loadtest.bench_common import (
    create_database,
    load_average,
    markdown_table,
    run_dir,
    write_record,
)

MODES = ("core", "compiled", "prepared", "driver")


@dataclass(frozen=True)
class Round:
    mode: str
    cpu_us: float
    wall_us: float
    load: float


def reservations(count: int) -> list[tuple[Reservation, OutboxMessage]]:
    rows = []
    for n in range(count):
        reservation = Reservation(
            id=new_reservation_id(),
            event_id="bench",
            user_id=f"user-{n}",
            seat_ids=[f"S{n}"],
            status=ReservationStatus.PENDING,
            expires_at=utcnow() + timedelta(minutes=5),
        )
        rows.append((reservation, messages.requested(reservation)))
    return rows


async def timed(writes: Callable[[], Awaitable[None]], count: int, mode: str) -> Round:
    cpu, wall = time.process_time(), time.perf_counter()
    await writes()
    cpu, wall = time.process_time() - cpu, time.perf_counter() - wall
    return Round(mode, cpu / count * 1e6, wall / count * 1e6, load_average())


async def one_round(mode: str, engine: AsyncEngine, driver: Any, count: int) -> Round:
    rows = reservations(count)
    statements = ReservationStatements(engine.dialect)
    reservation_sql, outbox_sql = statements.insert_reservation, statements.insert_outbox
    reservation_rows = [reservation.model_dump() for reservation, _ in rows]
    outbox_rows = [outbox.model_dump() for _, outbox in rows]

    async def core() -> None:
        for reservation, outbox in zip(reservation_rows, outbox_rows, strict=True):
            async with engine.begin() as conn:
                await conn.execute(insert(Reservation), [reservation])
                await conn.execute(insert(OutboxMessage), [outbox])

    async def compiled() -> None:
        for reservation, outbox in zip(reservation_rows, outbox_rows, strict=True):
            async with engine.begin() as conn:
                await conn.exec_driver_sql(
                    reservation_sql.sql, reservation_sql.parameters(reservation)
                )
                await conn.exec_driver_sql(outbox_sql.sql, outbox_sql.parameters(outbox))

    async def prepared() -> None:
        for reservation, outbox in zip(reservation_rows, outbox_rows, strict=True):
            async with driver_transaction(engine) as transaction:
                await transaction.execute(reservation_sql, reservation)
                await transaction.execute(outbox_sql, outbox)

    async def driver_only() -> None:
        for reservation, outbox in zip(reservation_rows, outbox_rows, strict=True):
            async with driver.cursor() as cursor:
                await cursor.execute(reservation_sql.sql, reservation_sql.parameters(reservation))
                await cursor.execute(outbox_sql.sql, outbox_sql.parameters(outbox))
            await driver.commit()

    writes = {"core": core, "compiled": compiled, "prepared": prepared, "driver": driver_only}[mode]
    return await timed(writes, count, mode)


async def measure(database_url: str, writes: int, rounds: int) -> list[Round]:
    engine = make_engine(database_url)
    url = engine.url
    driver = await asyncmy.connect(
        host=url.host, port=url.port, user=url.username, password=url.password, db=url.database
    )
    try:
        # Warm: the first use of each path compiles, caches and connects.
        for mode in MODES:
            await one_round(mode, engine, driver, 50)
        results = []
        for n in range(rounds):
            for mode in MODES:
                result = await one_round(mode, engine, driver, writes)
                results.append(result)
                print(
                    f"round {n + 1} {mode}: {result.cpu_us:.0f} µs CPU, {result.wall_us:.0f} µs"
                    f" wall a write; load {result.load:.1f}",
                    flush=True,
                )
        return results
    finally:
        driver.close()
        await engine.dispose()


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m loadtest.bench_statements")
    parser.add_argument("--writes", type=int, default=1000, help="reservations a round")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--json", type=Path, help="also write the raw record to this file")
    args = parser.parse_args(argv)

    with run_dir("bench-statements-") as directory:
        server = MariaDBServer(directory, free_port())
        server.start()
        try:
            server.wait_ready()
            database_url = f"{server.url}/bench"
            asyncio.run(create_database(database_url))
            upgrade(database_url)
            results = asyncio.run(measure(database_url, args.writes, args.rounds))
        finally:
            server.process.stop()

    medians = {
        mode: {
            "cpu_us": statistics.median(r.cpu_us for r in results if r.mode == mode),
            "wall_us": statistics.median(r.wall_us for r in results if r.mode == mode),
        }
        for mode in MODES
    }
    floor = medians["driver"]["cpu_us"]
    print()
    print(
        markdown_table(
            ["mode", "CPU a write (median)", "wall a write", "CPU x the driver alone"],
            [
                [
                    mode,
                    f"{m['cpu_us']:.0f} µs",
                    f"{m['wall_us']:.0f} µs",
                    f"{m['cpu_us'] / floor:.2f}x",
                ]
                for mode, m in medians.items()
            ],
        )
    )
    if args.json:
        write_record(
            args.json,
            "bench_statements",
            {
                "settings": {"writes": args.writes, "rounds": args.rounds},
                "rounds": [asdict(r) for r in results],
                "medians": medians,
            },
        )


if __name__ == "__main__":
    main()
