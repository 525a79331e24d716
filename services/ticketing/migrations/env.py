"""Alembic's environment: the SQLModel metadata of every service, migrated over the async driver."""

import asyncio
import importlib

from alembic import context
from sqlalchemy.engine import Connection
from sqlmodel import SQLModel

from ticketing.common.db import make_engine
from ticketing.common.settings import CommonSettings

# Every module that declares table models; add yours so autogenerate sees its tables.
MODEL_MODULES = ("ticketing.user.models",)

for module in MODEL_MODULES:
    importlib.import_module(module)

target_metadata = SQLModel.metadata


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
