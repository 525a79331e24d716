"""The event service's app: `python -m ticketing event`."""

from fastapi import FastAPI

from ticketing.common.http import create_app as create_service_app
from ticketing.common.resources import database_lifespan
from ticketing.common.settings import CommonSettings, get_settings
from ticketing.event.routes import router


def create_app(settings: CommonSettings | None = None) -> FastAPI:
    settings = settings or get_settings()
    return create_service_app(
        service="event",
        settings=settings,
        lifespan=database_lifespan(settings.database_url, owned_by=["core"]),
        routers=[router],
        description="The catalogue of events: title, venue, sale window and status.",
    )
