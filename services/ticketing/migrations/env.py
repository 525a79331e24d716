"""Alembic's environment: the SQLModel metadata of every service, migrated over the async driver."""

import asyncio

from alembic import context
from sqlalchemy.engine import Connection

from ticketing.common.db import make_engine
from ticketing.common.settings import CommonSettings
from ticketing.migrations.metadata import all_tables

target_metadata = all_tables()


def _database_url() -> str:
    return context.config.get_main_option("sqlalchemy.url") or CommonSettings().database_url


def _migrate(connection: Connection) -> None:
    context.configure(connection=connection, target_metadata=target_metadata)
    with context.begin_transaction():
        context.run_migrations()


async def _run_online() -> None:
    engine = make_engine(_database_url(), pool_size=1)
    try:
        async with engine.connect() as connection:
            await connection.run_sync(_migrate)
    finally:
        await engine.dispose()


if context.is_offline_mode():
    context.configure(url=_database_url(), target_metadata=target_metadata, literal_binds=True)
    with context.begin_transaction():
        context.run_migrations()
else:
    asyncio.run(_run_online())
