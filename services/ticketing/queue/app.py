"""The queue service's app: `python -m ticketing queue` (the waiting room and its web page)."""

from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
from pathlib import Path

from fastapi import FastAPI
from fastapi.responses import RedirectResponse
from fastapi.staticfiles import StaticFiles

from ticketing.common.background import Loop, background
from ticketing.common.http import ReadinessCheck
from ticketing.common.http import create_app as create_service_app
from ticketing.common.resources import open_redis, redis_ready
from ticketing.common.tokens import jwks_router
from ticketing.queue.admission import AdmissionWorker
from ticketing.queue.hub import Hub
from ticketing.queue.joins import Joins
from ticketing.queue.routes import router
from ticketing.queue.settings import QueueSettings, get_settings
from ticketing.queue.watch import WaitingRoomApp

WEB_DIR = Path(__file__).resolve().parent.parent / "web"


def create_app(settings: QueueSettings | None = None) -> FastAPI:
    settings = settings or get_settings()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[Mapping[str, ReadinessCheck]]:
        async with open_redis(settings) as client:
            app.state.redis = client
            app.state.hub = hub = Hub(client, settings)
            app.state.joins = Joins(hub)
            loops = {
                "queue_hub": Loop(
                    hub.run(), settings.liveness_seconds + settings.queue_push_interval_seconds
                )
            }
            if settings.queue_run_admission:
                loops["queue_admission"] = Loop(
                    AdmissionWorker(client, settings).run(),
                    settings.liveness_seconds + settings.queue_admission_tick_seconds,
                )
            async with background(app.state.heartbeats, **loops) as workers:
                yield {"redis": redis_ready(client), "workers": workers}

    app = create_service_app(
        service="queue",
        settings=settings,
        lifespan=lifespan,
        routers=[router, jwks_router(settings, "admission")],
        description="The waiting room: join, live position, admission tokens, fairness record.",
        app_class=WaitingRoomApp,
    )
    app.mount("/app", StaticFiles(directory=WEB_DIR, html=True), name="web")
    app.add_api_route("/", lambda: RedirectResponse("/app/"), include_in_schema=False)
    return app
