"""The migrations build exactly the schema the models describe, on a fresh database."""

from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy.engine import Connection
from ticketing.common.db import make_engine
from ticketing.migrations.metadata import all_tables


def _drift(connection: Connection) -> list[object]:
    return list(compare_metadata(MigrationContext.configure(connection), all_tables()))


async def test_migrated_database_matches_every_model(migrated_database: str) -> None:
    engine = make_engine(migrated_database, pool_size=1)
    try:
        async with engine.connect() as connection:
            drift = await connection.run_sync(_drift)
    finally:
        await engine.dispose()
    assert drift == [], "\n".join(map(str, drift))
