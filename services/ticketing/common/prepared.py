"""Prepared statements: Core statements compiled once and run on the database driver itself.

For the statements every confirmed reservation runs (the reserve's write, payment's open and
settle, the confirm), SQLAlchemy's execution of a Core statement (its greenlet bridge to the async
driver, the execution context, the result) costs two to three times the driver's own work for
the reserve's two INSERTs and COMMIT (`loadtest.bench_statements`, its raw record
`loadtest/results/bench/statements.json`). SQLAlchemy still writes the SQL (from the table
models, in the engine's dialect), converts the values (the columns' own bind and result
processors) and owns the connections (the engine's pool with its pings and resets); only the
statements' execution goes to asyncmy directly.

A `driver_transaction` takes a connection from the engine's pool and commits when its block
ends. One that fails is left to the pool's reset, which rolls back what the server says is open.
The driver's errors come out as SQLAlchemy's (`IntegrityError`, `OperationalError`, ...), so
callers handle them as they would `engine.begin()`'s; a connection that broke (the server went
away, the task was cancelled mid-statement) is invalidated, so the pool connects afresh.
"""

import contextlib
from collections.abc import AsyncIterator, Callable, Mapping, Sequence
from typing import Any, cast

from sqlalchemy import BindParameter, bindparam
from sqlalchemy.engine import Dialect
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncEngine
from sqlalchemy.sql import ClauseElement
from sqlalchemy.sql.compiler import SQLCompiler

Processor = Callable[[Any], Any] | None

# The names of a `PreparedIn` list's bind parameters: `in_list_0`, `in_list_1`, ...
IN_LIST_BIND = "in_list_"


class Prepared:
    """One statement compiled once. Its named parameters come from the caller; values written
    into the statement itself (`status == PENDING`) are compiled in with it. `columns` names
    the columns an INSERT or UPDATE writes (all of the table's by default)."""

    def __init__(
        self, statement: ClauseElement, dialect: Dialect, columns: Sequence[str] | None = None
    ) -> None:
        compiled = cast(SQLCompiler, statement.compile(dialect=dialect, column_keys=columns))
        self.sql = str(compiled)
        # (name, given by the caller, the value compiled in, the column type's conversion)
        self._binds: list[tuple[str, bool, Any, Processor]] = []
        for name in compiled.positiontup or ():
            bind = compiled.binds[name]
            self._binds.append((name, bind.required, bind.value, bind.type.bind_processor(dialect)))
        self._columns: list[tuple[str, Processor]] = [
            (column.name, column.type.result_processor(dialect, None))
            for column in getattr(statement, "selected_columns", ())
        ]

    def parameters(self, values: Mapping[str, Any]) -> tuple[Any, ...]:
        """The driver's parameters, in order; a named one missing from `values` is a KeyError."""
        ordered = (
            (values[name] if given else compiled_in, process)
            for name, given, compiled_in, process in self._binds
        )
        return tuple(process(value) if process else value for value, process in ordered)

    def row(self, values: Sequence[Any]) -> dict[str, Any]:
        return {
            name: process(value) if process else value
            for (name, process), value in zip(self._columns, values, strict=True)
        }


class PreparedIn:
    """A statement over a list of values (`column IN (...)`), prepared once for each length of
    list it meets. `build` makes the statement from the list's bind parameters."""

    def __init__(
        self,
        build: Callable[[list[BindParameter[Any]]], ClauseElement],
        dialect: Dialect,
        columns: Sequence[str] | None = None,
    ) -> None:
        self._build = build
        self._dialect = dialect
        self._columns = columns
        self._by_length: dict[int, Prepared] = {}

    def over(
        self, items: Sequence[Any], values: Mapping[str, Any] | None = None
    ) -> tuple[Prepared, dict[str, Any]]:
        """The statement for `items` and its values: the items' and the other named ones."""
        length = len(items)
        if length not in self._by_length:
            binds: list[BindParameter[Any]] = [
                bindparam(f"{IN_LIST_BIND}{i}") for i in range(length)
            ]
            self._by_length[length] = Prepared(self._build(binds), self._dialect, self._columns)
        listed = {f"{IN_LIST_BIND}{i}": item for i, item in enumerate(items)}
        return self._by_length[length], {**(values or {}), **listed}


class DriverTransaction:
    """Statements of one transaction on one driver connection."""

    def __init__(self, dialect: Dialect, connection: Any) -> None:
        self._dialect = dialect
        self._connection = connection
        # Set once a statement failed in a way that leaves the connection's state unknown.
        self.broken = False

    async def execute(self, statement: Prepared, values: Mapping[str, Any]) -> int:
        """Run the statement; how many rows it changed."""
        async with self._connection.cursor() as cursor:
            return int(await self._run(cursor.execute(statement.sql, statement.parameters(values))))

    async def insert_many(self, statement: Prepared, rows: Sequence[Mapping[str, Any]]) -> None:
        """One INSERT of many rows (the driver writes them as one statement)."""
        async with self._connection.cursor() as cursor:
            await self._run(
                cursor.executemany(statement.sql, [statement.parameters(r) for r in rows])
            )

    async def all(self, statement: Prepared, values: Mapping[str, Any]) -> list[dict[str, Any]]:
        """The statement's rows, each by column name."""
        async with self._connection.cursor() as cursor:
            await self._run(cursor.execute(statement.sql, statement.parameters(values)))
            found = await self._run(cursor.fetchall())
        return [statement.row(values) for values in found]

    async def commit(self) -> None:
        await self._run(self._connection.commit())

    async def _run(self, call: Any) -> Any:
        dbapi_error = self._dialect.loaded_dbapi.Error
        try:
            return await call
        except dbapi_error as error:
            self.broken = self._dialect.is_disconnect(error, None, None)
            raise DBAPIError.instance(
                None,
                None,
                error,
                dbapi_error,
                connection_invalidated=self.broken,
                dialect=self._dialect,
            ) from error
        except BaseException:
            # Cancelled or failed mid-statement: the server's reply may still be on the way.
            self.broken = True
            raise


@contextlib.asynccontextmanager
async def driver_transaction(engine: AsyncEngine) -> AsyncIterator[DriverTransaction]:
    """A transaction on a pooled connection's driver, committed when the block ends."""
    async with engine.connect() as conn:
        transaction = DriverTransaction(
            engine.dialect, (await conn.get_raw_connection()).driver_connection
        )
        try:
            yield transaction
            await transaction.commit()
        finally:
            if transaction.broken:
                await conn.invalidate()
