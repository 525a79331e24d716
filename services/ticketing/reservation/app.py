"""The reservation service's app: `python -m ticketing reservation`.

Besides the HTTP API it runs the outbox relay, the expiry sweeper and the consumer of payment
outcomes, all started and stopped with the app's lifespan.
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
from ticketing.common.topics import RESERVATION_REFUND_REQUESTED, RESERVATION_REQUESTED, Topics
from ticketing.reservation.consumers import CONSUMED_TOPICS, payment_outcome_handler
from ticketing.reservation.orphans import OrphanReaper
from ticketing.reservation.outbox import OutboxRelay
from ticketing.reservation.routes import router
from ticketing.reservation.service import ReservationService
from ticketing.reservation.settings import ReservationSettings, get_settings
from ticketing.reservation.sweeper import sweep_forever
from ticketing.retry.failure import RetryFailureHandler
from ticketing.retry.policy import ladder_topics

PRODUCED_TOPICS = (RESERVATION_REQUESTED, RESERVATION_REFUND_REQUESTED)


def create_app(settings: ReservationSettings | None = None) -> FastAPI:
    settings = settings or get_settings()
    topics = Topics(settings.kafka_topic_prefix)
    group = f"{settings.kafka_topic_prefix}{settings.consumer_group}"

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
            producer = make_producer(settings.kafka_bootstrap, "reservation")
            await producer.start()
            stack.push_async_callback(producer.stop)
            service = ReservationService(engine, redis, settings)
            app.state.redis, app.state.engine, app.state.reservations = redis, engine, service
            runner = ConsumerRunner(
                bootstrap=settings.kafka_bootstrap,
                group=group,
                topics=[topics.name(t) for t in CONSUMED_TOPICS],
                handler=payment_outcome_handler(service),
                # Failures climb the retry ladder: retry.<topic>.<n>, then <topic>.dlq.
                failure_handler=RetryFailureHandler(producer, topics, group),
                redis=redis,
                redis_prefix=settings.redis_key_prefix,
            )
            relay = OutboxRelay(
                engine, producer, topics, service.outbox_written, settings.outbox_poll_seconds
            )
            workers = await stack.enter_async_context(
                background(
                    outbox_relay=relay.run(),
                    expiry_sweeper=sweep_forever(
                        service,
                        OrphanReaper(engine, redis, settings.redis_key_prefix),
                        settings.sweep_interval_seconds,
                    ),
                    payment_outcomes=runner.run(),
                )
            )
            yield {
                "redis": redis_ready(redis),
                "database": database_ready(engine),
                "kafka": kafka_ready(producer),
                "workers": workers,
            }

    return create_service_app(
        service="reservation",
        settings=settings,
        lifespan=lifespan,
        routers=[router],
        description="Holds seats all-or-none, records reservations, confirms or releases them.",
    )
