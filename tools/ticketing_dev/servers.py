"""The three backing servers of the platform, each run from its real binary on loopback.

Every server keeps its data and log under the run directory it is given, listens on the
port it is given, and is ready only when it answers a real request (PING, SELECT 1, a Kafka
metadata request).
"""

import asyncio
import base64
import os
import shutil
import subprocess
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import asyncmy
import redis
from aiokafka.admin import AIOKafkaAdminClient

from ticketing_dev.paths import kafka_libs, kafka_tools
from ticketing_dev.process import ManagedProcess, ServerNotReady

KAFKA_VERSION = "4.1.1"
DB_USER = "ticketing"
DB_PASSWORD = "ticketing-local"


class MissingPrerequisite(RuntimeError):
    """Something the local stack needs is not installed; the message says how to install it."""


def require_binary(name: str, hint: str) -> str:
    path = shutil.which(name) or next(
        (str(p) for p in (Path("/usr/sbin") / name, Path("/usr/bin") / name) if p.exists()), None
    )
    if path is None:
        raise MissingPrerequisite(f"{name} is not installed: {hint}")
    return path


def _run_as_root_flag() -> list[str]:
    """mariadbd refuses to run as root unless told to; CI and these machines run as root."""
    return ["--user=root"] if os.geteuid() == 0 else []


@dataclass
class RedisServer:
    """Debian's redis-server; `name` tells apart the nodes of a cluster (ticketing_dev.redis_cluster),
    which also pass their cluster settings in `extra_args`."""

    run_dir: Path
    port: int
    name: str = "redis"
    extra_args: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        self.data_dir = self.run_dir / self.name
        binary = require_binary("redis-server", "run scripts/install/debian.sh")
        self.process = ManagedProcess(
            self.name,
            [
                binary,
                "--bind",
                "127.0.0.1",
                "--port",
                str(self.port),
                "--dir",
                str(self.data_dir),
                "--save",
                "",
                "--appendonly",
                "yes",
                "--appendfsync",
                "everysec",
                "--protected-mode",
                "no",
                *self.extra_args,
            ],
            self.run_dir / "logs" / f"{self.name}.log",
        )

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        self.data_dir.mkdir(parents=True, exist_ok=True)
        self.process.start()

    def client(self) -> redis.Redis:
        """A synchronous client of this one server, for the dev tooling's own checks."""
        return redis.Redis(port=self.port, socket_timeout=1)

    def ping(self) -> bool:
        with self.client() as client:
            return bool(client.ping())

    def wait_ready(self, timeout: float = 20) -> None:
        self.process.wait_ready(self.ping, timeout)


@dataclass
class MariaDBServer:
    run_dir: Path
    port: int

    def __post_init__(self) -> None:
        self.data_dir = self.run_dir / "mariadb"
        self.socket = self.run_dir / "mariadb.sock"
        # Its own temporary directory: concurrent stacks sharing /tmp broke each other's bootstrap.
        self.tmp_dir = self.run_dir / "mariadb-tmp"
        self._daemon = require_binary("mariadbd", "run scripts/install/debian.sh")
        self._install_db = require_binary("mariadb-install-db", "run scripts/install/debian.sh")
        self.process = ManagedProcess(
            "mariadb",
            [
                self._daemon,
                "--no-defaults",
                f"--datadir={self.data_dir}",
                f"--tmpdir={self.tmp_dir}",
                f"--socket={self.socket}",
                f"--pid-file={self.run_dir / 'mariadb.pid'}",
                f"--port={self.port}",
                "--bind-address=127.0.0.1",
                "--skip-name-resolve",
                *_run_as_root_flag(),
                "--innodb-buffer-pool-size=256M",
                "--innodb-flush-log-at-trx-commit=1",
                "--max-connections=500",
                "--character-set-server=utf8mb4",
                "--collation-server=utf8mb4_unicode_ci",
            ],
            self.run_dir / "logs" / "mariadb.log",
        )

    @property
    def url(self) -> str:
        """The SQLAlchemy URL of the server (no database): callers append one."""
        return f"mysql+asyncmy://{DB_USER}:{DB_PASSWORD}@127.0.0.1:{self.port}"

    def _initialise(self) -> None:
        self.tmp_dir.mkdir(parents=True, exist_ok=True)
        if (self.data_dir / "mysql").exists():
            return
        self.data_dir.mkdir(parents=True, exist_ok=True)
        result = subprocess.run(
            [
                self._install_db,
                "--no-defaults",
                f"--datadir={self.data_dir}",
                f"--tmpdir={self.tmp_dir}",
                "--auth-root-authentication-method=socket",
                "--skip-test-db",
                *_run_as_root_flag(),
            ],
            capture_output=True,
            text=True,
            check=False,
        )
        if result.returncode != 0:
            raise ServerNotReady(f"mariadb-install-db failed:\n{result.stderr[-2000:]}")

    def start(self) -> None:
        self._initialise()
        self.process.start()

    def _create_user(self) -> bool:
        statements = (
            f"CREATE USER IF NOT EXISTS '{DB_USER}'@'127.0.0.1' IDENTIFIED BY '{DB_PASSWORD}';"
            f"GRANT ALL PRIVILEGES ON *.* TO '{DB_USER}'@'127.0.0.1' WITH GRANT OPTION;"
        )
        subprocess.run(
            ["mariadb", "--no-defaults", f"--socket={self.socket}", "-uroot", "-e", statements],
            capture_output=True,
            check=True,
        )
        return True

    def select_one(self) -> bool:
        async def query() -> bool:
            conn = await asyncmy.connect(
                host="127.0.0.1",
                port=self.port,
                user=DB_USER,
                password=DB_PASSWORD,
                connect_timeout=2,
            )
            try:
                async with conn.cursor() as cursor:
                    await cursor.execute("SELECT 1")
                    return bool((await cursor.fetchone())[0] == 1)
            finally:
                conn.close()

        return asyncio.run(query())

    def wait_ready(self, timeout: float = 60) -> None:
        self.process.wait_ready(lambda: self.socket.exists(), timeout)
        self.process.wait_ready(self._create_user, timeout)
        self.process.wait_ready(self.select_one, timeout)


def _kafka_cluster_id() -> str:
    """A cluster id as Kafka spells one: a random UUID in URL-safe base64 without padding.

    Like Kafka's own Uuid.randomUuid, it never starts with '-', which the format tool's
    command line would read as an option.
    """
    while True:
        cluster_id = base64.urlsafe_b64encode(uuid.uuid4().bytes).rstrip(b"=").decode()
        if not cluster_id.startswith("-"):
            return cluster_id


def _java() -> str:
    return require_binary("java", "Kafka needs Java 17+: apt-get install openjdk-17-jre-headless")


def kafka_classpath() -> str:
    """The broker's jars and Kafka's command-line tools, as scripts/install/kafka.sh cached them."""
    jars = (kafka_libs(KAFKA_VERSION), kafka_tools(KAFKA_VERSION))
    for directory in jars:
        if not (directory / ".complete").exists():
            raise MissingPrerequisite(
                f"Kafka {KAFKA_VERSION}'s jars are not in {directory}: run scripts/install/kafka.sh"
            )
    return ":".join(f"{directory}/*" for directory in jars)


def run_kafka_tool(main_class: str, args: Sequence[str], timeout: float = 60) -> str:
    """Run one of Kafka's own command-line tools (the class a kafka-*.sh script runs); its output."""
    result = subprocess.run(
        [_java(), "-Xmx256m", "-cp", kafka_classpath(), main_class, *args],
        capture_output=True,
        text=True,
        check=False,
        timeout=timeout,
    )
    if result.returncode != 0:
        raise ServerNotReady(
            f"{main_class} {' '.join(args)} failed:\n{result.stdout}{result.stderr}"
        )
    return result.stdout


@dataclass(frozen=True)
class KafkaQuorum:
    """The controllers of one KRaft cluster (node id: controller port) and the cluster id every
    node's log directory is formatted with."""

    controller_ports: Mapping[int, int]
    cluster_id: str = field(default_factory=_kafka_cluster_id)

    @property
    def voters(self) -> str:
        """controller.quorum.voters: every controller as id@host:port."""
        return ",".join(f"{node}@127.0.0.1:{port}" for node, port in self.controller_ports.items())

    @property
    def size(self) -> int:
        return len(self.controller_ports)


@dataclass
class KafkaServer:
    """A KRaft node that is both broker and controller: alone, its own controller, unless it is
    given the quorum of a cluster it is one voter of (ticketing_dev.kafka_trio)."""

    run_dir: Path
    port: int
    controller_port: int
    node_id: int = 1
    quorum: KafkaQuorum | None = None
    heap_mb: int = 1024

    def __post_init__(self) -> None:
        self.cluster = self.quorum or KafkaQuorum({self.node_id: self.controller_port})
        name = "kafka" if self.cluster.size == 1 else f"kafka-{self.node_id}"
        self.data_dir = self.run_dir / name
        self.config = self.run_dir / f"{name}.properties"
        self.process = ManagedProcess(
            name,
            [
                _java(),
                "-Xms256m",
                f"-Xmx{self.heap_mb}m",
                "-XX:+UseG1GC",
                "-Djava.awt.headless=true",
                "-cp",
                kafka_classpath(),
                "kafka.Kafka",
                str(self.config),
            ],
            self.run_dir / "logs" / f"{name}.log",
        )

    @property
    def bootstrap(self) -> str:
        return f"127.0.0.1:{self.port}"

    @property
    def processes(self) -> list[ManagedProcess]:
        return [self.process]

    def topic_env(self) -> dict[str, str]:
        """The services' topic settings: their defaults suit one broker."""
        return {}

    def _write_config(self) -> None:
        # Kafka's internal topics as a production cluster keeps them: three copies, two in sync.
        replicas = min(3, self.cluster.size)
        in_sync = min(2, self.cluster.size)
        self.config.write_text(
            "\n".join(
                [
                    "process.roles=broker,controller",
                    f"node.id={self.node_id}",
                    f"controller.quorum.voters={self.cluster.voters}",
                    f"listeners=PLAINTEXT://127.0.0.1:{self.port},"
                    f"CONTROLLER://127.0.0.1:{self.controller_port}",
                    f"advertised.listeners=PLAINTEXT://127.0.0.1:{self.port}",
                    "controller.listener.names=CONTROLLER",
                    "listener.security.protocol.map=PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT",
                    "inter.broker.listener.name=PLAINTEXT",
                    f"log.dirs={self.data_dir}",
                    "num.partitions=3",
                    "auto.create.topics.enable=false",
                    f"offsets.topic.replication.factor={replicas}",
                    "offsets.topic.num.partitions=10",
                    f"transaction.state.log.replication.factor={replicas}",
                    f"transaction.state.log.min.isr={in_sync}",
                    f"share.coordinator.state.topic.replication.factor={replicas}",
                    f"share.coordinator.state.topic.min.isr={in_sync}",
                    "group.initial.rebalance.delay.ms=0",
                    "",
                ]
            )
        )

    def _format(self) -> None:
        if (self.data_dir / "meta.properties").exists():
            return
        run_kafka_tool(
            "kafka.tools.StorageTool",
            ["format", "-t", self.cluster.cluster_id, "-c", str(self.config), "--ignore-formatted"],
        )

    def start(self) -> None:
        self._write_config()
        self._format()
        self.process.start()

    def metadata(self) -> bool:
        """Whether the broker answers a metadata request that lists every node of its cluster."""

        async def request() -> bool:
            admin = AIOKafkaAdminClient(bootstrap_servers=self.bootstrap, request_timeout_ms=3000)
            await admin.start()
            try:
                cluster = await admin.describe_cluster()
                return len(cluster["brokers"]) == self.cluster.size
            finally:
                await admin.close()

        return asyncio.run(request())

    def wait_ready(self, timeout: float = 90) -> None:
        self.process.wait_ready(self.metadata, timeout, interval=0.5)
