"""The payment service's app: `python -m ticketing payment`.

Its work is the consumer of reservation requests and refund requests, run in the app's lifespan;
the HTTP side serves probes, metrics and a payment lookup for administrators.
"""

from collections.abc import AsyncIterator, Mapping
from contextlib import AsyncExitStack, asynccontextmanager

from fastapi import FastAPI

from ticketing.common.background import Loop, background
from ticketing.common.http import ReadinessCheck
from ticketing.common.http import create_app as create_service_app
from ticketing.common.topics import RESERVATION_PAID, RESERVATION_PAYMENT_FAILED
from ticketing.payment.consumers import CONSUMED_TOPICS, payment_handler
from ticketing.payment.gateway import PaymentGateway, SimulatedGateway
from ticketing.payment.routes import router
from ticketing.payment.service import PaymentService
from ticketing.payment.settings import PaymentSettings, get_settings
from ticketing.runtime import open_service_clients

PRODUCED_TOPICS = (RESERVATION_PAID, RESERVATION_PAYMENT_FAILED)


def create_app(
    settings: PaymentSettings | None = None, gateway: PaymentGateway | None = None
) -> FastAPI:
    settings = settings or get_settings()
    gateway = gateway or SimulatedGateway(
        settings.payment_gateway_latency_seconds, settings.payment_gateway_failure_rate
    )

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[Mapping[str, ReadinessCheck]]:
        async with AsyncExitStack() as stack:
            clients = await open_service_clients(
                stack,
                settings,
                client_id="payment",
                consumer_group=settings.payment_consumer_group,
                topics_used=(*PRODUCED_TOPICS, *CONSUMED_TOPICS),
                owned_by=["payment"],
            )
            service = PaymentService(
                clients.engine, gateway, clients.producer, clients.topics, settings.seat_price_cents
            )
            app.state.redis, app.state.engine = clients.redis, clients.engine
            app.state.payments = service
            runner = clients.consumer(CONSUMED_TOPICS, payment_handler(service))
            workers = await stack.enter_async_context(
                background(
                    app.state.heartbeats,
                    reservation_requests=Loop(runner.run(), settings.liveness_seconds),
                )
            )
            yield {**clients.readiness(), "workers": workers}

    return create_service_app(
        service="payment",
        settings=settings,
        lifespan=lifespan,
        routers=[router],
        description="Charges each reservation once and publishes whether it was paid.",
    )
