"""Statements on the driver under a pooled connection (`ticketing.common.prepared`): the errors a
caller of `engine.begin()` would get, nothing kept of a failed transaction, and a pool that never
hands out a connection a failure left in an unknown state."""

import asyncio
from collections.abc import AsyncIterator

import pytest
from sqlalchemy import Column, Integer, MetaData, Table, func, insert, literal, select, text
from sqlalchemy.exc import DBAPIError, IntegrityError
from sqlalchemy.ext.asyncio import AsyncEngine
from ticketing.common.db import make_engine
from ticketing.common.prepared import Prepared, driver_transaction

SEATS = Table("seats", MetaData(), Column("id", Integer, primary_key=True), Column("sold", Integer))


@pytest.fixture
async def single(database_url: str) -> AsyncIterator[AsyncEngine]:
    """One pooled connection, so every transaction gets the one the last left behind."""
    engine = make_engine(database_url, pool_size=1)
    async with engine.begin() as conn:
        await conn.run_sync(SEATS.metadata.create_all)
    yield engine
    await engine.dispose()


async def connection_id(engine: AsyncEngine) -> int:
    statement = Prepared(select(func.connection_id().label("id")), engine.dialect)
    async with driver_transaction(engine) as transaction:
        (row,) = await transaction.all(statement, {})
    return int(row["id"])


async def test_a_duplicate_key_is_an_integrity_error_and_its_transaction_is_rolled_back(
    single: AsyncEngine,
) -> None:
    add = Prepared(insert(SEATS), single.dialect)
    async with driver_transaction(single) as transaction:
        await transaction.execute(add, {"id": 1, "sold": 0})
    before = await connection_id(single)

    with pytest.raises(IntegrityError):
        async with driver_transaction(single) as transaction:
            await transaction.execute(add, {"id": 2, "sold": 0})
            await transaction.execute(add, {"id": 1, "sold": 0})

    async with single.connect() as conn:
        assert (await conn.execute(select(SEATS.c.id))).scalars().all() == [1]
    # The server answered: the connection was sound and stays in the pool.
    assert await connection_id(single) == before


async def test_a_connection_the_server_dropped_fails_one_transaction_and_is_replaced(
    single: AsyncEngine, database_url: str
) -> None:
    dropped = await connection_id(single)
    admin = make_engine(database_url, pool_size=1)
    try:
        async with admin.connect() as conn:
            await conn.execute(text(f"KILL CONNECTION {dropped}"))
    finally:
        await admin.dispose()

    # Handed out again at once, so without a ping: the statement meets the dead connection.
    with pytest.raises(DBAPIError) as failure:
        await connection_id(single)
    assert failure.value.connection_invalidated
    assert await connection_id(single) != dropped


async def test_a_transaction_cancelled_mid_statement_leaves_no_reply_for_the_next(
    single: AsyncEngine,
) -> None:
    slow = Prepared(select(func.sleep(1).label("slept")), single.dialect)
    answer = Prepared(select(literal(7).label("answer")), single.dialect)

    async def sleep_on_the_server() -> None:
        async with driver_transaction(single) as transaction:
            await transaction.all(slow, {})

    sleeping = asyncio.create_task(sleep_on_the_server())
    await asyncio.sleep(0.3)
    sleeping.cancel()
    with pytest.raises(asyncio.CancelledError):
        await sleeping

    # Had the pool handed the connection out again, this would read the SLEEP's late reply.
    async with driver_transaction(single) as transaction:
        assert await transaction.all(answer, {}) == [{"answer": 7}]
