"""The reservation and payment services and the retry ladder's consumer and worker run as real
processes (`python -m ticketing <name>`) against a stack of real servers, as the chart deploys
them, so a fault test can kill, stop and restart any of them."""

import asyncio
import sys
import time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import httpx
import redis.asyncio as aioredis
from sqlalchemy.ext.asyncio import AsyncEngine
from ticketing.common.settings import CommonSettings
from ticketing.devstack.ports import free_port
from ticketing.devstack.process import ManagedProcess
from ticketing.devstack.stack import LocalStack

# Short enough that a reservation whose payment never came back expires within a test.
HOLD_TTL_SECONDS = 8


def service_env(settings: CommonSettings) -> dict[str, str]:
    """What every process of one test's platform shares: the servers and the namespaces."""
    return {
        "TICKETING_REDIS_URL": settings.redis_url,
        "TICKETING_DATABASE_URL": settings.database_url,
        "TICKETING_KAFKA_BOOTSTRAP": settings.kafka_bootstrap,
        "TICKETING_REDIS_KEY_PREFIX": settings.redis_key_prefix,
        "TICKETING_KAFKA_TOPIC_PREFIX": settings.kafka_topic_prefix,
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


# What says a process is ready: an HTTP service's /readyz checks every dependency and background
# task; a retry process serves /metrics once its topics exist, and then only starts its loop.
READY_PATHS = {"retry-consumer": "/metrics", "retry-worker": "/metrics"}


class ServiceProcess:
    """One `python -m ticketing <command>` process with its own port and log."""

    def __init__(
        self,
        command: str,
        settings: CommonSettings,
        log_dir: Path,
        env: Mapping[str, str] | None = None,
    ) -> None:
        self.port = free_port()
        self.base_url = f"http://127.0.0.1:{self.port}"
        self.ready_path = READY_PATHS.get(command, "/readyz")
        self.process = ManagedProcess(
            command,
            [sys.executable, "-m", "ticketing", command, "--port", str(self.port)],
            log_dir / f"{command}.log",
            # The retry processes serve their metrics on the port an HTTP service listens on.
            env={
                **service_env(settings),
                "TICKETING_RETRY_METRICS_PORT": str(self.port),
                **(env or {}),
            },
        )

    def start(self) -> None:
        self.process.start()

    def wait_ready(self, timeout: float = 60) -> None:
        """Until the process says it is ready (READY_PATHS)."""

        def ready() -> bool:
            return httpx.get(f"{self.base_url}{self.ready_path}", timeout=2).status_code == 200

        self.process.wait_ready(ready, timeout, interval=0.2)

    def restart(self) -> None:
        self.start()
        self.wait_ready()


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
