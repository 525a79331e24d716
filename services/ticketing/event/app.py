"""The event service's app: `python -m ticketing event`."""

from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager

from fastapi import FastAPI

from ticketing.common.http import ReadinessCheck
from ticketing.common.http import create_app as create_service_app
from ticketing.common.resources import database_ready, open_database
from ticketing.common.settings import CommonSettings, get_settings
from ticketing.event.routes import router


def create_app(settings: CommonSettings | None = None) -> FastAPI:
    settings = settings or get_settings()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[Mapping[str, ReadinessCheck]]:
        async with open_database(settings.database_url) as engine:
            app.state.engine = engine
            yield {"database": database_ready(engine)}

    return create_service_app(
        service="event",
        settings=settings,
        lifespan=lifespan,
        routers=[router],
        description="The catalogue of events: title, venue, sale window and status.",
    )
