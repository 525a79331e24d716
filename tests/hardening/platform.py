"""The reservation and payment services and the retry ladder's consumer and worker run as real
processes (tests/service_processes.py) against a stack of real servers, so a fault test can
kill, stop and restart any of them."""

import asyncio
import contextlib
import os
import signal
import time
from collections.abc import Iterator
from dataclasses import dataclass

from sqlalchemy.ext.asyncio import AsyncEngine
from ticketing.common.redis_client import RedisClient
from ticketing.common.redis_keys import SaleKeys
from ticketing.common.settings import CommonSettings
from ticketing_dev.process import ManagedProcess
from ticketing_dev.redis_cluster import RedisClusterServers
from ticketing_dev.stack import LocalStack

from tests.core.sale_kit import eventually
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
    """One fault test's platform: its servers, namespaces and service processes; its Redis is
    the stack's, or `redis_cluster` when it runs on one."""

    stack: LocalStack
    settings: CommonSettings
    engine: AsyncEngine
    redis: RedisClient
    reservation: ServiceProcess
    payment: ServiceProcess
    retry_consumer: ServiceProcess
    retry_worker: ServiceProcess
    redis_cluster: RedisClusterServers | None = None


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


@contextlib.contextmanager
def frozen(processes: list[ManagedProcess]) -> Iterator[None]:
    """The servers stopped (SIGSTOP) for the block: their connections stay open and nothing
    they are sent gets an answer, until they continue (SIGCONT) on the way out."""
    groups = [process.pid for process in processes if process.pid is not None]
    for group in groups:
        os.killpg(group, signal.SIGSTOP)
    try:
        yield
    finally:
        for group in groups:
            os.killpg(group, signal.SIGCONT)


async def crash_service(service: ServiceProcess, down_seconds: float) -> Outage:
    """SIGKILL a service (no shutdown code runs), then start a new process in its place."""
    outage = Outage(service.process.name, time.monotonic())
    service.process.kill()
    await asyncio.sleep(down_seconds)
    await asyncio.to_thread(service.restart)
    outage.ended = time.monotonic()
    return outage


async def kill_sale_primary(platform: FaultPlatform, event_id: str) -> Outage:
    """SIGKILL the Redis Cluster primary that serves the sale's slot, wait until its replica
    has taken the slot over, then start the killed node again, as its pod would be: it rejoins
    as the new primary's replica, which the retry consumer's parks on that primary wait for."""
    cluster = platform.redis_cluster
    assert cluster is not None, "the platform runs on a single Redis server"
    key = SaleKeys(platform.settings.redis_key_prefix, event_id).seats
    primary = await asyncio.to_thread(cluster.primary_of, key)
    outage = Outage(f"Redis primary {primary.name}", time.monotonic())
    primary.process.kill()

    async def replica_took_over() -> bool:
        return await asyncio.to_thread(cluster.primary_of, key) is not primary

    await eventually(replica_took_over, within=60)
    await asyncio.to_thread(cluster.wait_ready)
    outage.ended = time.monotonic()
    await asyncio.to_thread(primary.start)
    await asyncio.to_thread(cluster.wait_ready)
    return outage
