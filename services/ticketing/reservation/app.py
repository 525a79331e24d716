"""The reservation service's app: `python -m ticketing reservation`.

Besides the HTTP API it runs the outbox relay, the expiry sweeper and the consumer of payment
outcomes, all started and stopped with the app's lifespan.
"""

from collections.abc import AsyncIterator, Mapping
from contextlib import AsyncExitStack, asynccontextmanager

from fastapi import FastAPI

from ticketing.common.background import Loop, background
from ticketing.common.http import ReadinessCheck
from ticketing.common.http import create_app as create_service_app
from ticketing.common.topics import RESERVATION_REFUND_REQUESTED, RESERVATION_REQUESTED
from ticketing.reservation.consumers import CONSUMED_TOPICS, payment_outcome_handler
from ticketing.reservation.orphans import OrphanReaper
from ticketing.reservation.outbox import OutboxRelay
from ticketing.reservation.routes import router
from ticketing.reservation.service import ReservationService
from ticketing.reservation.settings import ReservationSettings, get_settings
from ticketing.reservation.sweeper import sweep_forever
from ticketing.runtime import open_service_clients

PRODUCED_TOPICS = (RESERVATION_REQUESTED, RESERVATION_REFUND_REQUESTED)


def create_app(settings: ReservationSettings | None = None) -> FastAPI:
    settings = settings or get_settings()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[Mapping[str, ReadinessCheck]]:
        async with AsyncExitStack() as stack:
            clients = await open_service_clients(
                stack,
                settings,
                client_id="reservation",
                consumer_group=settings.reservation_consumer_group,
                topics_used=(*PRODUCED_TOPICS, *CONSUMED_TOPICS),
                owned_by=["reservation"],
            )
            redis, engine = clients.redis, clients.engine
            service = ReservationService(engine, redis, settings)
            app.state.redis, app.state.engine, app.state.reservations = redis, engine, service
            relay = OutboxRelay(
                engine,
                clients.producer,
                clients.topics,
                service.outbox_written,
                settings.outbox_poll_seconds,
                settings.outbox_claim_seconds,
            )
            workers = await stack.enter_async_context(
                background(
                    app.state.heartbeats,
                    outbox_relay=Loop(
                        relay.run(), settings.liveness_seconds + settings.outbox_poll_seconds
                    ),
                    expiry_sweeper=Loop(
                        sweep_forever(
                            service,
                            OrphanReaper(engine, redis, settings.redis_key_prefix),
                            settings.sweep_interval_seconds,
                        ),
                        settings.liveness_seconds + settings.sweep_interval_seconds,
                    ),
                    payment_outcomes=Loop(
                        clients.consumer(CONSUMED_TOPICS, payment_outcome_handler(service)).run(),
                        settings.liveness_seconds,
                    ),
                )
            )
            yield {**clients.readiness(), "workers": workers}

    return create_service_app(
        service="reservation",
        settings=settings,
        lifespan=lifespan,
        routers=[router],
        description="Holds seats all-or-none, records reservations, confirms or releases them.",
    )
