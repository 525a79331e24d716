"""The user service's app: `python -m ticketing user`."""

from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager

from fastapi import FastAPI

from ticketing.common.http import ReadinessCheck
from ticketing.common.http import create_app as create_service_app
from ticketing.common.resources import database_ready, open_database
from ticketing.user.routes import router
from ticketing.user.settings import UserSettings, get_settings


def create_app(settings: UserSettings | None = None) -> FastAPI:
    settings = settings or get_settings()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[Mapping[str, ReadinessCheck]]:
        async with open_database(settings.database_url) as engine:
            app.state.engine = engine
            yield {"database": database_ready(engine)}

    return create_service_app(
        service="user",
        settings=settings,
        lifespan=lifespan,
        routers=[router],
        description="Sign-up, login and profiles; issues the access tokens every service checks.",
    )
