"""The engine after the database dropped its pooled connection (a restart, a KILL, a timeout):
the services must carry on with fresh connections, not keep failing on dead ones."""

from sqlalchemy import text
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncConnection
from ticketing.common.db import make_engine


async def test_engine_reconnects_after_the_server_drops_its_pooled_connection(
    database_url: str,
) -> None:
    engine = make_engine(database_url, pool_size=1)
    admin = make_engine(database_url, pool_size=1)
    try:
        async with engine.connect() as conn:
            dropped = int((await conn.execute(text("SELECT CONNECTION_ID()"))).scalar_one())
        async with admin.connect() as conn:
            await conn.execute(text(f"KILL CONNECTION {dropped}"))

        try:
            async with engine.connect() as conn:
                await conn.execute(text("SELECT 1"))
        except DBAPIError as exc:
            # At most the one statement that met the dead connection fails, as a disconnect.
            assert exc.connection_invalidated
        async with engine.connect() as conn:
            current = int((await conn.execute(text("SELECT CONNECTION_ID()"))).scalar_one())
        assert current != dropped
    finally:
        await engine.dispose()
        await admin.dispose()


async def _rollbacks(conn: AsyncConnection) -> int:
    """ROLLBACKs this session has sent (the pool hands the one connection out each time)."""
    return int((await conn.execute(text("SHOW SESSION STATUS LIKE 'Com_rollback'"))).one()[1])


async def test_a_connection_handed_back_after_its_commit_costs_no_rollback(
    database_url: str,
) -> None:
    engine = make_engine(database_url, pool_size=1)
    try:
        async with engine.begin() as conn:
            await conn.execute(text("CREATE TABLE seats (id INT PRIMARY KEY, sold INT)"))
            before = await _rollbacks(conn)
        for n in range(3):
            async with engine.begin() as conn:
                await conn.execute(text(f"INSERT INTO seats VALUES ({n}, 0)"))
        async with engine.connect() as conn:
            assert await _rollbacks(conn) == before
    finally:
        await engine.dispose()


async def test_a_connection_handed_back_inside_a_transaction_is_rolled_back_and_its_locks_freed(
    database_url: str,
) -> None:
    engine = make_engine(database_url, pool_size=1)
    other = make_engine(database_url, pool_size=1)
    try:
        async with engine.begin() as conn:
            await conn.execute(text("CREATE TABLE seats (id INT PRIMARY KEY, sold INT)"))
            await conn.execute(text("INSERT INTO seats VALUES (1, 0)"))
        async with engine.connect() as conn:
            # Straight through the driver: SQLAlchemy does not know a transaction is open.
            driver = (await conn.get_raw_connection()).driver_connection
            await driver.query("UPDATE seats SET sold = 1 WHERE id = 1")
        async with other.begin() as conn:
            await conn.execute(text("SET SESSION innodb_lock_wait_timeout = 2"))
            await conn.execute(text("UPDATE seats SET sold = 2 WHERE id = 1"))
        async with engine.connect() as conn:
            sold = (await conn.execute(text("SELECT sold FROM seats WHERE id = 1"))).scalar_one()
        assert sold == 2
    finally:
        await engine.dispose()
        await other.dispose()
