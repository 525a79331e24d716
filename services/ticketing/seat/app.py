"""The seat service's app: `python -m ticketing seat`."""

from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager

import httpx
from fastapi import FastAPI

from ticketing.common.http import ReadinessCheck
from ticketing.common.http import create_app as create_service_app
from ticketing.common.resources import database_ready, open_database, open_redis, redis_ready
from ticketing.seat.routes import router
from ticketing.seat.seat_maps import SeatMaps
from ticketing.seat.settings import SeatSettings, get_settings


def create_app(
    settings: SeatSettings | None = None, event_transport: httpx.AsyncBaseTransport | None = None
) -> FastAPI:
    """`event_transport` replaces the network to the event service (tests serve it in-process)."""
    settings = settings or get_settings()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[Mapping[str, ReadinessCheck]]:
        async with (
            open_database(settings.database_url) as engine,
            open_redis(settings) as redis,
            httpx.AsyncClient(
                base_url=settings.event_service_url, transport=event_transport, timeout=5.0
            ) as event_client,
        ):
            app.state.engine = engine
            app.state.redis = redis
            app.state.event_client = event_client
            app.state.seat_maps = SeatMaps(
                engine, redis, settings.redis_key_prefix, settings.seat_map_max_age_seconds
            )
            yield {"database": database_ready(engine, ["core"]), "redis": redis_ready(redis)}

    return create_service_app(
        service="seat",
        settings=settings,
        lifespan=lifespan,
        routers=[router],
        description="Venues and seat maps; each sale's seat inventory and its live status.",
    )
