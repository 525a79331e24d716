"""The engine after the database dropped its pooled connection (a restart, a KILL, a timeout):
the services must carry on with fresh connections, not keep failing on dead ones."""

from sqlalchemy import text
from sqlalchemy.exc import DBAPIError
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
