"""The user service's app: `python -m ticketing user`."""

from fastapi import FastAPI

from ticketing.common.http import create_app as create_service_app
from ticketing.common.resources import database_lifespan
from ticketing.common.tokens import jwks_router
from ticketing.user.routes import router
from ticketing.user.settings import UserSettings, get_settings


def create_app(settings: UserSettings | None = None) -> FastAPI:
    settings = settings or get_settings()
    return create_service_app(
        service="user",
        settings=settings,
        lifespan=database_lifespan(settings.database_url, owned_by=["core"]),
        routers=[router, jwks_router(settings, "login")],
        description="Sign-up, login and profiles; issues the access tokens every service checks.",
    )
