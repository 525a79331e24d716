"""The payment service's app: `python -m ticketing payment`.

Its work is the consumer of reservation requests and refund requests, run in the app's lifespan;
the HTTP side serves probes, metrics and a payment lookup for administrators.
"""

from collections.abc import AsyncIterator, Mapping
from contextlib import AsyncExitStack, asynccontextmanager

from fastapi import FastAPI

from ticketing.common.background import background
from ticketing.common.consumer import ConsumerRunner
from ticketing.common.http import ReadinessCheck
from ticketing.common.http import create_app as create_service_app
from ticketing.common.kafka import ensure_topics, make_producer
from ticketing.common.resources import (
    database_ready,
    kafka_ready,
    open_database,
    open_redis,
    redis_ready,
)
from ticketing.common.topics import RESERVATION_PAID, RESERVATION_PAYMENT_FAILED, Topics
from ticketing.payment.consumers import CONSUMED_TOPICS, payment_handler
from ticketing.payment.gateway import PaymentGateway, SimulatedGateway
from ticketing.payment.routes import router
from ticketing.payment.service import PaymentService
from ticketing.payment.settings import PaymentSettings, get_settings
from ticketing.retry.failure import RetryFailureHandler
from ticketing.retry.policy import ladder_topics

PRODUCED_TOPICS = (RESERVATION_PAID, RESERVATION_PAYMENT_FAILED)


def create_app(
    settings: PaymentSettings | None = None, gateway: PaymentGateway | None = None
) -> FastAPI:
    settings = settings or get_settings()
    topics = Topics(settings.kafka_topic_prefix)
    group = f"{settings.kafka_topic_prefix}{settings.consumer_group}"
    gateway = gateway or SimulatedGateway(
        settings.gateway_latency_seconds, settings.gateway_failure_rate
    )

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[Mapping[str, ReadinessCheck]]:
        async with AsyncExitStack() as stack:
            redis = await stack.enter_async_context(open_redis(settings.redis_url))
            engine = await stack.enter_async_context(open_database(settings.database_url))
            await ensure_topics(
                settings.kafka_bootstrap,
                [topics.name(t) for t in (*PRODUCED_TOPICS, *CONSUMED_TOPICS)]
                + ladder_topics(topics),
            )
            producer = make_producer(settings.kafka_bootstrap, "payment")
            await producer.start()
            stack.push_async_callback(producer.stop)
            service = PaymentService(engine, gateway, producer, topics, settings.seat_price_cents)
            app.state.redis, app.state.engine, app.state.payments = redis, engine, service
            runner = ConsumerRunner(
                bootstrap=settings.kafka_bootstrap,
                group=group,
                topics=[topics.name(t) for t in CONSUMED_TOPICS],
                handler=payment_handler(service),
                # Failures climb the retry ladder: retry.<topic>.<n>, then <topic>.dlq.
                failure_handler=RetryFailureHandler(producer, topics, group),
                redis=redis,
                redis_prefix=settings.redis_key_prefix,
            )
            workers = await stack.enter_async_context(background(reservation_requests=runner.run()))
            yield {
                "redis": redis_ready(redis),
                "database": database_ready(engine),
                "kafka": kafka_ready(producer),
                "workers": workers,
            }

    return create_service_app(
        service="payment",
        settings=settings,
        lifespan=lifespan,
        routers=[router],
        description="Charges each reservation once and publishes whether it was paid.",
    )
