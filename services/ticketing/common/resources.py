"""Long-lived clients a service opens in its lifespan, their readiness checks and request deps.

A service's lifespan opens them with `open_redis` / `open_database`, stores them on `app.state`
as `redis` / `engine`, and yields `redis_ready(...)` / `database_ready(...)` as its checks; route
functions then take `RedisDep` / `SessionDep`.
"""

from collections.abc import AsyncIterator, Iterable, Mapping
from contextlib import asynccontextmanager
from typing import Annotated, cast

from fastapi import Depends, FastAPI, Request
from sqlalchemy.ext.asyncio import AsyncEngine
from sqlmodel.ext.asyncio.session import AsyncSession

from ticketing.common.db import make_engine
from ticketing.common.http import ReadinessCheck, ServiceLifespan
from ticketing.common.producer import RenewingProducer
from ticketing.common.redis_client import RedisClient, connect_redis
from ticketing.common.settings import CommonSettings
from ticketing.migrations.schema import check_schema


@asynccontextmanager
async def open_redis(settings: CommonSettings) -> AsyncIterator[RedisClient]:
    """The process's Redis client (`ticketing.common.redis_client`), closed when the block ends."""
    client = connect_redis(settings)
    try:
        yield client
    finally:
        await client.aclose()


@asynccontextmanager
async def open_database(url: str, pool_size: int = 10) -> AsyncIterator[AsyncEngine]:
    engine = make_engine(url, pool_size=pool_size)
    try:
        yield engine
    finally:
        await engine.dispose()


def database_lifespan(database_url: str, owned_by: Iterable[str]) -> ServiceLifespan:
    """The lifespan of a service whose one dependency is the database (its tables `owned_by`
    those migration branches)."""

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[Mapping[str, ReadinessCheck]]:
        async with open_database(database_url) as engine:
            app.state.engine = engine
            yield {"database": database_ready(engine, owned_by)}

    return lifespan


def redis_ready(client: RedisClient) -> ReadinessCheck:
    async def ping() -> object:
        return await client.ping()

    return ping


def database_ready(engine: AsyncEngine, owned_by: Iterable[str]) -> ReadinessCheck:
    """The database answers and holds the migrations of the branches `owned_by` (the owners of
    the tables the service uses): a pod never goes ready against a schema it cannot use."""
    owners = tuple(owned_by)

    async def schema_at_head() -> None:
        async with engine.connect() as conn:
            await check_schema(conn, owners)

    return schema_at_head


def kafka_ready(producer: RenewingProducer) -> ReadinessCheck:
    """A metadata request to the cluster, through the producer's own connections."""

    async def metadata() -> object:
        return await producer.client.fetch_all_metadata()

    return metadata


async def get_redis(request: Request) -> RedisClient:
    # async: FastAPI would run a plain function in its thread pool on every request.
    return cast(RedisClient, request.app.state.redis)


async def get_session(request: Request) -> AsyncIterator[AsyncSession]:
    async with AsyncSession(request.app.state.engine, expire_on_commit=False) as session:
        yield session


RedisDep = Annotated[RedisClient, Depends(get_redis)]
SessionDep = Annotated[AsyncSession, Depends(get_session)]
