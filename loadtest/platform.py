"""The local platform a load run drives: Redis, MariaDB and Kafka from ticketing_dev, and
every registered service as a `python -m ticketing <service>` process on a free loopback port.

Each run gets its own database, Redis key prefix and Kafka topic prefix, so runs never mix.
"""

import asyncio
import logging
import os
import subprocess
import sys
from contextlib import suppress
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path

from sqlalchemy import text
from sqlalchemy.ext.asyncio import create_async_engine
from ticketing import __main__ as registry
from ticketing.common.db import server_url
from ticketing.common.settings import CommonSettings
from ticketing.common.tokens import JWKS_PATH
from ticketing.gateway.routes import COMPONENTS
from ticketing_dev.ports import free_port
from ticketing_dev.process import ManagedProcess, ServerNotReady, http_ready
from ticketing_dev.redis_cluster import RedisClusterServers
from ticketing_dev.stack import LocalStack, StackPorts

from loadtest.crowd.client import ServiceUrls
from loadtest.scenarios import Scenario

REPO_ROOT = Path(__file__).resolve().parents[1]
# The operator needs a Kubernetes API server; a load run writes the sale's config itself.
NOT_STARTED = frozenset({"operator"})
READY_TIMEOUT_SECONDS = 90.0
MIGRATE_TIMEOUT_SECONDS = 180.0


class PlatformNotReady(RuntimeError):
    """A service did not start or answer in time, the migrations failed, or the sale could not
    be opened."""


@dataclass
class Platform:
    """`stack`: servers someone else started and stops (the test session's); by default the
    platform starts its own on free ports and stops them. `redis_cluster`: a Redis Cluster
    someone else started, which the services then use in place of the stack's Redis."""

    run_dir: Path
    run_id: str
    stack: LocalStack | None = None
    redis_cluster: RedisClusterServers | None = None
    processes: dict[str, ManagedProcess] = field(default_factory=dict)
    ports: dict[str, int] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.owns_stack = self.stack is None
        if self.stack is None:
            self.stack = LocalStack(self.run_dir / "servers", StackPorts.from_env())
        self.servers: LocalStack = self.stack

    @property
    def key_prefix(self) -> str:
        return f"lt{self.run_id}"

    @property
    def topic_prefix(self) -> str:
        return f"lt{self.run_id}."

    @property
    def database_url(self) -> str:
        return f"{self.servers.mariadb.url}/lt_{self.run_id}"

    def url(self, name: str) -> str:
        """Where the run's service `name` answers, once the services are started."""
        return f"http://127.0.0.1:{self.ports.get(name, 0)}"

    @property
    def redis_settings(self) -> CommonSettings:
        """Where the run's Redis is, for the services and for the run's own clients."""
        if self.redis_cluster is None:
            return CommonSettings(redis_url=self.servers.redis.url, redis_cluster=False)
        return CommonSettings(redis_url=self.redis_cluster.url, redis_cluster=True)

    @property
    def urls(self) -> ServiceUrls:
        return ServiceUrls(
            *(self.url(name) for name in ("user", "queue", "event", "seat", "reservation"))
        )

    def service_env(self, scenario: Scenario) -> dict[str, str]:
        return {
            **self.servers.env(),
            "TICKETING_DATABASE_URL": self.database_url,
            "TICKETING_REDIS_URL": self.redis_settings.redis_url,
            "TICKETING_REDIS_CLUSTER": str(self.redis_settings.redis_cluster).lower(),
            "TICKETING_REDIS_KEY_PREFIX": self.key_prefix,
            "TICKETING_KAFKA_TOPIC_PREFIX": self.topic_prefix,
            "TICKETING_EVENT_SERVICE_URL": self.urls.event,
            "TICKETING_PAYMENT_GATEWAY_FAILURE_RATE": str(scenario.behaviour.payment_failure_rate),
            "TICKETING_LOG_LEVEL": "WARNING",
            # Both retry processes default to /metrics on port 9102: with any other process
            # on it they died on "address in use", and the run had no retry ladder at all.
            "TICKETING_RETRY_METRICS_PORT": "0",
            # CPU seconds per route and background loop on each service's /metrics.
            "TICKETING_CPU_ACCOUNTING": "true",
        }

    def process_groups(self) -> dict[str, int]:
        """Every server and service of the run by name, with its process group (each was
        started in a session of its own, so the group id is its pid)."""
        servers = self.servers.processes()
        if self.redis_cluster is not None:
            servers += [node.process for node in self.redis_cluster.nodes]
        named = {process.name: process.pid for process in servers}
        started = {name: process.pid for name, process in self.processes.items()}
        return {name: pid for name, pid in {**named, **started}.items() if pid is not None}

    def keep_logs(self) -> None:
        """This process's own log lines (Kafka clients retrying while the broker starts) go
        to a file beside the services' logs, so the console shows only the run's progress."""
        self.run_dir.mkdir(parents=True, exist_ok=True)
        logging.basicConfig(filename=self.run_dir / "loadtest.log", level=logging.INFO, force=True)

    def start_servers(self) -> None:
        if self.owns_stack:
            self.servers.start()

    async def prepare_storage(self) -> None:
        """The run's database; the services create their Kafka topics themselves."""
        engine = create_async_engine(server_url(self.database_url))
        try:
            async with engine.begin() as conn:
                await conn.execute(text(f"CREATE DATABASE IF NOT EXISTS lt_{self.run_id}"))
        finally:
            await engine.dispose()

    def migrate(self, scenario: Scenario) -> None:
        result = subprocess.run(
            [sys.executable, "-m", "ticketing", "migrate"],
            env={**os.environ, **self.service_env(scenario)},
            cwd=REPO_ROOT,
            capture_output=True,
            text=True,
            timeout=MIGRATE_TIMEOUT_SECONDS,
            check=False,
        )
        if result.returncode != 0:
            raise PlatformNotReady(f"migrations failed:\n{result.stderr[-2000:]}")

    def start_services(self, scenario: Scenario) -> None:
        env = self.service_env(scenario)
        for name in registry.APPS:
            self.ports[name] = free_port()
        env["TICKETING_EVENT_SERVICE_URL"] = self.urls.event
        # The gateway, the one origin a browser (or Locust) is given, routes to this run's services.
        env.update({f"TICKETING_GATEWAY_{name.upper()}_URL": self.url(name) for name in COMPONENTS})
        # As the chart deploys them: each signer signs with its key (the local-only ones from
        # the settings here) and every other process verifies with what the signer publishes.
        published = {
            "user": ("TICKETING_LOGIN_JWKS_URL", f"{self.urls.user}{JWKS_PATH}"),
            "queue": ("TICKETING_ADMISSION_JWKS_URL", f"{self.urls.queue}{JWKS_PATH}"),
        }
        for name in [*registry.APPS, *(w for w in registry.WORKERS if w not in NOT_STARTED)]:
            argv = self.argv(name)
            verifies = dict(value for signer, value in published.items() if signer != name)
            process = ManagedProcess(
                name, argv, self.run_dir / "logs" / f"{name}.log", {**env, **verifies}, REPO_ROOT
            )
            self.processes[name] = process
            process.start()
        for name, port in self.ports.items():
            try:
                self.processes[name].wait_ready(partial(http_ready, port), READY_TIMEOUT_SECONDS)
            except ServerNotReady as exc:
                raise PlatformNotReady(f"{name} did not become ready: {exc}") from exc
        # Workers answer no /readyz; one that died while the services started is caught here.
        for name, process in self.processes.items():
            if not process.running():
                raise PlatformNotReady(
                    f"{name} exited; last lines of {process.log_path}:\n{process.log_tail()}"
                )

    def argv(self, name: str) -> list[str]:
        """How to run one service or worker: the platform's own entry point."""
        port = ["--port", str(self.ports[name])] if name in self.ports else []
        return [sys.executable, "-m", "ticketing", name, *port]

    def stop(self) -> None:
        for process in self.processes.values():
            with suppress(ProcessLookupError):
                process.stop()
        if self.owns_stack:
            self.servers.stop()


async def start_platform(platform: Platform, scenario: Scenario) -> None:
    """Servers, storage, schema and services, in that order; blocking steps run in threads."""
    await asyncio.to_thread(platform.start_servers)
    await platform.prepare_storage()
    await asyncio.to_thread(platform.migrate, scenario)
    await asyncio.to_thread(platform.start_services, scenario)
