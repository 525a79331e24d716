"""Fixtures for the services' tests: a migrated database and apps served in-process.

`serve(app)` runs the app's real lifespan (its clients connect to the session's real servers)
and returns an httpx client that talks to it through ASGI; everything stops when the test ends.
"""

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import AsyncExitStack

import httpx
import pytest
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from fastapi import FastAPI
from sqlalchemy.ext.asyncio import AsyncEngine
from ticketing.common.resources import open_database
from ticketing.common.settings import CommonSettings
from ticketing.migrations.run import upgrade

from tests.core.sale_kit import SMALL_TOPIC_MAX_BYTES

Serve = Callable[[FastAPI], Awaitable[httpx.AsyncClient]]


@pytest.fixture
async def migrated_database(database_url: str) -> str:
    """The test's fresh database with every migration branch applied (`upgrade heads`)."""
    # Alembic's environment runs its own event loop, so it cannot run on the test's loop.
    await asyncio.to_thread(upgrade, database_url)
    return database_url


@pytest.fixture
async def engine(migrated_database: str) -> AsyncIterator[AsyncEngine]:
    """An engine on the migrated database, for tests that drive a service's code directly."""
    async with open_database(migrated_database) as engine:
        yield engine


# The fixtures that create (and at teardown drop) the test's database.
DATABASE_FIXTURES = ("database_url", "migrated_database", "engine")


@pytest.fixture
async def serve(request: pytest.FixtureRequest) -> AsyncIterator[Serve]:
    # A fixture set up first is torn down last: the database must come before `serve`, so that
    # the apps stop before it is dropped (else their background loops meet a dropped database,
    # and a query cut off there leaves its connection to the garbage collector).
    names = request.fixturenames
    database = [names.index(name) for name in DATABASE_FIXTURES if name in names]
    if database and min(database) > names.index("serve"):
        pytest.fail("name the database fixture before `serve`, so the apps stop before it drops")
    async with AsyncExitStack() as stack:

        async def start(app: FastAPI) -> httpx.AsyncClient:
            await stack.enter_async_context(app.router.lifespan_context(app))
            return await stack.enter_async_context(
                httpx.AsyncClient(
                    transport=httpx.ASGITransport(app=app),
                    base_url=f"http://{app.state.service}",
                )
            )

        yield start


@pytest.fixture
async def small_topic(settings: CommonSettings) -> AsyncIterator[str]:
    """A one-partition topic whose broker refuses a batch over SMALL_TOPIC_MAX_BYTES."""
    name = f"{settings.kafka_topic_prefix}small"
    admin = AIOKafkaAdminClient(bootstrap_servers=settings.kafka_bootstrap)
    await admin.start()
    try:
        await admin.create_topics(
            [NewTopic(name, 1, 1, topic_configs={"max.message.bytes": str(SMALL_TOPIC_MAX_BYTES)})]
        )
        yield name
    finally:
        await admin.close()
