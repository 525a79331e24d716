"""Fixtures of the waiting-room tests: a sale's queue and admission worker on the real Redis."""

import pytest
import redis.asyncio as aioredis
from ticketing.common.settings import CommonSettings
from ticketing.queue.admission import AdmissionWorker
from ticketing.queue.settings import QueueSettings
from ticketing.queue.store import SaleQueue

from .factories import make_queue_settings


@pytest.fixture
def queue_settings(settings: CommonSettings) -> QueueSettings:
    return make_queue_settings(settings)


@pytest.fixture
def queue(redis_client: aioredis.Redis, queue_settings: QueueSettings) -> SaleQueue:
    return SaleQueue(redis_client, queue_settings.redis_key_prefix, "spring-concert")


@pytest.fixture
def worker(redis_client: aioredis.Redis, queue_settings: QueueSettings) -> AdmissionWorker:
    return AdmissionWorker(redis_client, queue_settings)
