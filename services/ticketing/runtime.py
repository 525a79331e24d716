"""Service wiring: what a service that consumes Kafka opens in its lifespan (Redis, the database,
its topics with their retry ladders, a producer) and consumer runners whose failures climb the
ladder. It joins the shared code to the retry ladder, so neither of them has to know a service."""

from collections.abc import Iterable, Mapping
from contextlib import AsyncExitStack
from dataclasses import dataclass

from sqlalchemy.ext.asyncio import AsyncEngine

from ticketing.common.consumer import ConsumerRunner, Handler
from ticketing.common.http import ReadinessCheck
from ticketing.common.kafka import ensure_topics
from ticketing.common.producer import RenewingProducer
from ticketing.common.redis_client import RedisClient
from ticketing.common.resources import (
    database_ready,
    kafka_ready,
    open_database,
    open_redis,
    redis_ready,
)
from ticketing.common.settings import CommonSettings
from ticketing.common.topics import TopicFamily, Topics
from ticketing.retry.failure import RetryFailureHandler
from ticketing.retry.policy import ladder_topics


@dataclass(frozen=True)
class ServiceClients:
    settings: CommonSettings
    topics: Topics
    group: str
    redis: RedisClient
    engine: AsyncEngine
    producer: RenewingProducer
    # The migration branches whose tables the service uses: readiness waits for their heads.
    owned_by: tuple[str, ...]

    def consumer(self, consumed: Iterable[str], handler: Handler) -> ConsumerRunner:
        """A runner for the logical topics `consumed`, in this service's consumer group."""
        return ConsumerRunner(
            bootstrap=self.settings.kafka_bootstrap,
            group=self.group,
            topics=[self.topics.name(t) for t in consumed],
            handler=handler,
            # Failures climb the retry ladder: retry.<topic>.<n>, then <topic>.dlq.
            failure_handler=RetryFailureHandler(self.producer, self.topics, self.group),
            redis=self.redis,
            redis_prefix=self.settings.redis_key_prefix,
            dedup_window_seconds=self.settings.dedup_window_seconds,
        )

    def readiness(self) -> Mapping[str, ReadinessCheck]:
        return {
            "redis": redis_ready(self.redis),
            "database": database_ready(self.engine, self.owned_by),
            "kafka": kafka_ready(self.producer),
        }


async def open_service_clients(
    stack: AsyncExitStack,
    settings: CommonSettings,
    *,
    client_id: str,
    consumer_group: str,
    topics_used: Iterable[str],
    owned_by: Iterable[str],
) -> ServiceClients:
    """Open every client on `stack` (closed when it unwinds); create the topics it will use."""
    topics = Topics(settings.kafka_topic_prefix)
    redis = await stack.enter_async_context(open_redis(settings))
    engine = await stack.enter_async_context(open_database(settings.database_url))
    families = dict.fromkeys(map(topics.name, topics_used), TopicFamily.MAIN)
    await ensure_topics(
        settings.kafka_bootstrap,
        settings.topic_specs(families | ladder_topics(topics)),
        settings.kafka_wait_seconds,
    )
    producer = RenewingProducer(settings.kafka_bootstrap, client_id)
    await producer.start()
    stack.push_async_callback(producer.stop)
    return ServiceClients(
        settings=settings,
        topics=topics,
        group=f"{settings.kafka_topic_prefix}{consumer_group}",
        redis=redis,
        engine=engine,
        producer=producer,
        owned_by=tuple(owned_by),
    )
