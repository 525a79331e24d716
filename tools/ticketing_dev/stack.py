"""The local platform's backing servers as one unit: start together, ready together, stop together."""

import contextlib
import json
import os
import signal
import time
from dataclasses import dataclass, field
from pathlib import Path

from ticketing_dev.kafka_trio import KafkaTrio
from ticketing_dev.ports import ensure_free, free_port
from ticketing_dev.process import ManagedProcess
from ticketing_dev.redis_cluster import ClusterPorts, RedisClusterServers
from ticketing_dev.servers import KafkaServer, MariaDBServer, RedisServer


@dataclass(frozen=True)
class StackPorts:
    redis: int
    mariadb: int
    kafka: int
    kafka_controller: int

    @classmethod
    def from_env(cls) -> "StackPorts":
        """Ports from TICKETING_*_PORT variables; a missing one is picked free on loopback."""

        def pick(name: str, what: str) -> int:
            value = os.environ.get(f"TICKETING_{name}_PORT")
            return ensure_free(int(value), what) if value else free_port()

        return cls(
            redis=pick("REDIS", "Redis"),
            mariadb=pick("MARIADB", "MariaDB"),
            kafka=pick("KAFKA", "Kafka"),
            kafka_controller=pick("KAFKA_CONTROLLER", "Kafka's controller"),
        )


@dataclass
class LocalStack:
    """Redis, MariaDB and Kafka: one broker that is its own controller, or with
    `kafka_brokers=3` a three-node cluster whose first node takes the Kafka ports and the
    other two free ones. `with_redis_cluster`: a Redis Cluster on free ports as well, which
    `env()` then points the services at (the single Redis still runs beside it)."""

    run_dir: Path
    ports: StackPorts
    kafka_brokers: int = 1
    with_redis_cluster: bool = False
    redis: RedisServer = field(init=False)
    mariadb: MariaDBServer = field(init=False)
    kafka: KafkaServer | KafkaTrio = field(init=False)
    redis_cluster: RedisClusterServers | None = field(init=False)

    def __post_init__(self) -> None:
        self.run_dir.mkdir(parents=True, exist_ok=True)
        self.redis = RedisServer(self.run_dir, self.ports.redis)
        self.mariadb = MariaDBServer(self.run_dir, self.ports.mariadb)
        if self.kafka_brokers == 1:
            self.kafka = KafkaServer(self.run_dir, self.ports.kafka, self.ports.kafka_controller)
        else:
            others = range(self.kafka_brokers - 1)
            self.kafka = KafkaTrio(
                self.run_dir,
                [self.ports.kafka, *(free_port() for _ in others)],
                [self.ports.kafka_controller, *(free_port() for _ in others)],
            )
        self.redis_cluster = (
            RedisClusterServers(
                self.run_dir, ClusterPorts.kept_in(self.run_dir / "redis-cluster-ports.json")
            )
            if self.with_redis_cluster
            else None
        )

    @property
    def state_file(self) -> Path:
        return self.run_dir / "stack.json"

    def env(self) -> dict[str, str]:
        """The settings a service needs to reach these servers (see ticketing.common.settings)."""
        redis = {"TICKETING_REDIS_URL": self.redis.url}
        if self.redis_cluster is not None:
            redis = {
                "TICKETING_REDIS_URL": self.redis_cluster.url,
                "TICKETING_REDIS_CLUSTER": "true",
            }
        return {
            **redis,
            "TICKETING_DATABASE_URL": f"{self.mariadb.url}/ticketing",
            "TICKETING_KAFKA_BOOTSTRAP": self.kafka.bootstrap,
            **self.kafka.topic_env(),
        }

    def start(self) -> None:
        servers = (self.kafka, self.mariadb, self.redis)
        try:
            for server in servers:
                server.start()
            for server in servers:
                server.wait_ready()
            if self.redis_cluster is not None:
                self.redis_cluster.start()
        except BaseException:
            self.stop()
            raise
        self.state_file.write_text(
            json.dumps(
                {"pids": {p.name: p.pid for p in self.processes()}, "env": self.env()},
                indent=2,
            )
        )

    def processes(self) -> list[ManagedProcess]:
        """Every server process of the stack (Kafka's one or three, the Redis Cluster's nodes)."""
        nodes = self.redis_cluster.nodes if self.redis_cluster else []
        return [
            self.redis.process,
            self.mariadb.process,
            *self.kafka.processes,
            *(node.process for node in nodes),
        ]

    def stop(self) -> None:
        for process in self.processes():
            process.stop()
        self.state_file.unlink(missing_ok=True)


def stop_recorded(run_dir: Path, timeout: float = 20) -> list[str]:
    """Stop the servers a detached `up` recorded in run_dir; returns the names it stopped."""
    state_file = run_dir / "stack.json"
    if not state_file.exists():
        return []
    pids: dict[str, int] = json.loads(state_file.read_text())["pids"]
    for pid in pids.values():
        with contextlib.suppress(ProcessLookupError):
            os.killpg(pid, signal.SIGTERM)
    deadline = time.monotonic() + timeout
    for pid in pids.values():
        while _alive(pid) and time.monotonic() < deadline:
            time.sleep(0.1)
        if _alive(pid):
            os.killpg(pid, signal.SIGKILL)
    state_file.unlink()
    return list(pids)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True
