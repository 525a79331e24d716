"""What SQLAlchemy adds to the reservation's own database write: a PENDING reservation and its
outbox row, inserted and committed, done four ways by one process on one MariaDB:

- `core`: as `ReservationService.reserve` does it: Core `insert()` of the table models through
  the async engine (`engine.begin()`, `write_outbox`);
- `compiled`: the same two INSERT statements compiled once from the same models, their values
  converted by the columns' own bind processors, run by `exec_driver_sql` on the same engine;
- `pooled`: the same compiled statements and values on the asyncmy connection under a
  connection taken from the engine's pool (`get_raw_connection().driver_connection`): SQLAlchemy
  only hands the connection out and takes it back;
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
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import asdict, dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

import asyncmy
from sqlalchemy import Table, insert
from sqlalchemy.engine import Dialect
from sqlalchemy.ext.asyncio import AsyncEngine
from ticketing.common.db import make_engine
from ticketing.common.sqltypes import utcnow
from ticketing.migrations.run import upgrade
from ticketing.reservation import messages
from ticketing.reservation.models import (
    OutboxMessage,
    Reservation,
    ReservationStatus,
    new_reservation_id,
)
from ticketing.reservation.outbox import write_outbox
from ticketing_dev.ports import free_port
from ticketing_dev.servers import MariaDBServer

from loadtest.bench_common import (
    create_database,
    load_average,
    markdown_table,
    run_dir,
    write_record,
)

MODES = ("core", "compiled", "pooled", "driver")


@dataclass(frozen=True)
class Round:
    mode: str
    cpu_us: float
    wall_us: float
    load: float


@dataclass(frozen=True)
class Compiled:
    """One INSERT of every column of a table, compiled once, and how to turn a row into its
    values: what a prepared statement would hold."""

    sql: str
    names: Sequence[str]
    processors: dict[str, Callable[[Any], Any] | None]

    @classmethod
    def insert_into(cls, table: Table, dialect: Dialect) -> "Compiled":
        compiled = insert(table).compile(dialect=dialect)
        names = list(compiled.positiontup or ())
        return cls(
            str(compiled),
            names,
            {name: table.c[name].type.bind_processor(dialect) for name in names},
        )

    def values(self, row: dict[str, Any]) -> tuple[Any, ...]:
        return tuple(
            processor(row[name]) if (processor := self.processors[name]) else row[name]
            for name in self.names
        )


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
    dialect = engine.dialect
    reservation_sql = Compiled.insert_into(Reservation.__table__, dialect)  # type: ignore[attr-defined]
    outbox_sql = Compiled.insert_into(OutboxMessage.__table__, dialect)  # type: ignore[attr-defined]
    # The outbox's id is the database's to give.
    outbox_rows = [outbox.model_dump() for _, outbox in rows]
    reservation_rows = [reservation.model_dump() for reservation, _ in rows]

    async def core() -> None:
        for reservation, outbox in rows:
            async with engine.begin() as conn:
                await conn.execute(insert(Reservation), [reservation.model_dump()])
                await write_outbox(conn, outbox)

    async def compiled() -> None:
        for reservation, outbox in zip(reservation_rows, outbox_rows, strict=True):
            async with engine.begin() as conn:
                await conn.exec_driver_sql(reservation_sql.sql, reservation_sql.values(reservation))
                await conn.exec_driver_sql(outbox_sql.sql, outbox_sql.values(outbox))

    async def pooled() -> None:
        for reservation, outbox in zip(reservation_rows, outbox_rows, strict=True):
            async with engine.connect() as conn:
                connection = (await conn.get_raw_connection()).driver_connection
                if connection is None:
                    raise RuntimeError("the pool handed out a closed connection")
                async with connection.cursor() as cursor:
                    await cursor.execute(reservation_sql.sql, reservation_sql.values(reservation))
                    await cursor.execute(outbox_sql.sql, outbox_sql.values(outbox))
                await connection.commit()

    async def driver_only() -> None:
        for reservation, outbox in zip(reservation_rows, outbox_rows, strict=True):
            async with driver.cursor() as cursor:
                await cursor.execute(reservation_sql.sql, reservation_sql.values(reservation))
                await cursor.execute(outbox_sql.sql, outbox_sql.values(outbox))
            await driver.commit()

    writes = {"core": core, "compiled": compiled, "pooled": pooled, "driver": driver_only}[mode]
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
