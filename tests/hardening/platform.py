"""The reservation and payment services and the retry ladder's consumer and worker run as real
processes (tests/service_processes.py) against a stack of real servers, so a fault test can
kill, stop and restart any of them."""

import asyncio
import time
from dataclasses import dataclass

import redis.asyncio as aioredis
from sqlalchemy.ext.asyncio import AsyncEngine
from ticketing.common.settings import CommonSettings
from ticketing_dev.stack import LocalStack

from tests.service_processes import ServiceProcess, namespace_env

# Short enough that a reservation whose payment never came back expires within a test.
HOLD_TTL_SECONDS = 8


def service_env(settings: CommonSettings) -> dict[str, str]:
    """What every process of one fault test's platform runs with: its servers and namespaces,
    and short timings so a test sees expiries and retries within seconds."""
    return {
        **namespace_env(settings),
        "TICKETING_DEFAULT_HOLD_TTL_SECONDS": str(HOLD_TTL_SECONDS),
        "TICKETING_HOLD_KEY_GRACE_SECONDS": "2",
        "TICKETING_OUTBOX_POLL_SECONDS": "0.1",
        "TICKETING_SWEEP_INTERVAL_SECONDS": "0.2",
        "TICKETING_PAYMENT_GATEWAY_LATENCY_SECONDS": "0.01",
        # Some declines, so the sale's histories include failed payments.
        "TICKETING_PAYMENT_GATEWAY_FAILURE_RATE": "0.1",
        "TICKETING_RETRY_LEASE_MS": "2000",
        "TICKETING_RETRY_CLAIM_BATCH": "5",
        # A few buyers stand in for a crowd, each holding far more often than a person may.
        "TICKETING_HOLD_RATE_LIMIT": "100000",
    }


@dataclass
class FaultPlatform:
    """One fault test's platform: its servers, namespaces and service processes."""

    stack: LocalStack
    settings: CommonSettings
    engine: AsyncEngine
    redis: aioredis.Redis
    reservation: ServiceProcess
    payment: ServiceProcess
    retry_consumer: ServiceProcess
    retry_worker: ServiceProcess


@dataclass
class Outage:
    """When a component went away and when it answered again (monotonic seconds)."""

    component: str
    began: float
    ended: float = 0.0

    @property
    def seconds(self) -> float:
        return self.ended - self.began


async def restart_server(stack: LocalStack, name: str, down_seconds: float) -> Outage:
    """Stop Redis, MariaDB or Kafka cleanly, keep it down, start it on the same data."""
    server = {"redis": stack.redis, "mariadb": stack.mariadb, "kafka": stack.kafka}[name]
    outage = Outage(name, time.monotonic())
    await asyncio.to_thread(server.process.stop)
    await asyncio.sleep(down_seconds)
    await asyncio.to_thread(server.start)
    await asyncio.to_thread(server.wait_ready)
    outage.ended = time.monotonic()
    return outage


async def crash_service(service: ServiceProcess, down_seconds: float) -> Outage:
    """SIGKILL a service (no shutdown code runs), then start a new process in its place."""
    outage = Outage(service.process.name, time.monotonic())
    service.process.kill()
    await asyncio.sleep(down_seconds)
    await asyncio.to_thread(service.restart)
    outage.ended = time.monotonic()
    return outage
