"""Services as real processes (`python -m ticketing <name>`), as the chart deploys them, each on
its own free port with its own log, for tests that kill, stop and restart them."""

import sys
from collections.abc import Mapping
from pathlib import Path

import httpx
from ticketing.common.settings import CommonSettings
from ticketing_dev.ports import free_port
from ticketing_dev.process import ManagedProcess

# What says a process is ready: an HTTP service's /readyz checks every dependency and background
# task; a retry process serves /metrics once its topics exist, and then only starts its loop.
READY_PATHS = {"retry-consumer": "/metrics", "retry-worker": "/metrics"}

# How long a service process may take to answer its probe: a minute on a loaded machine.
STARTUP_SECONDS = 60.0


def namespace_env(settings: CommonSettings) -> dict[str, str]:
    """One test's servers and namespaces, shared by every process of its platform."""
    return {
        "TICKETING_REDIS_URL": settings.redis_url,
        "TICKETING_REDIS_CLUSTER": str(settings.redis_cluster).lower(),
        "TICKETING_DATABASE_URL": settings.database_url,
        "TICKETING_KAFKA_BOOTSTRAP": settings.kafka_bootstrap,
        "TICKETING_REDIS_KEY_PREFIX": settings.redis_key_prefix,
        "TICKETING_KAFKA_TOPIC_PREFIX": settings.kafka_topic_prefix,
    }


class ServiceProcess:
    """One `python -m ticketing <command>` process with its own port and `<command>.log`."""

    def __init__(self, command: str, env: Mapping[str, str], log_dir: Path) -> None:
        self.port = free_port()
        self.base_url = f"http://127.0.0.1:{self.port}"
        self.ready_path = READY_PATHS.get(command, "/readyz")
        self.process = ManagedProcess(
            command,
            [sys.executable, "-m", "ticketing", command, "--port", str(self.port)],
            log_dir / f"{command}.log",
            # The retry processes serve their metrics on the port an HTTP service listens on.
            env={**env, "TICKETING_RETRY_METRICS_PORT": str(self.port)},
        )

    def start(self) -> None:
        self.process.start()

    def wait_ready(self, timeout: float = STARTUP_SECONDS) -> None:
        """Until the process says it is ready (READY_PATHS); fails with its log if it died."""

        def ready() -> bool:
            return httpx.get(f"{self.base_url}{self.ready_path}", timeout=2).status_code == 200

        self.process.wait_ready(ready, timeout, interval=0.2)

    def restart(self) -> None:
        """Start (again, after a kill or stop) and wait until ready."""
        self.start()
        self.wait_ready()
