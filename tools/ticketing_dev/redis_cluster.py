"""A Redis Cluster on loopback: three primaries with a replica each, from Debian's redis-server.

Each node is a `RedisServer` of its own (data and log under the run directory, named
`redis-cluster-<n>`) with cluster mode on, its cluster bus on a port of its own (so no node
needs its port + 10000 free) and a short node timeout, so that a replica takes over from a
killed primary within seconds. `redis-cli --cluster create` joins the nodes; the cluster is
ready once every running node says `cluster_state:ok` and every replica is in sync with its
primary. Started again on the same run directory, the nodes read their `nodes.conf` and
rejoin: a formed cluster is never created twice.
"""

import json
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path

from ticketing_dev.ports import free_port
from ticketing_dev.process import ServerNotReady
from ticketing_dev.servers import RedisServer, require_binary

PRIMARIES = 3
REPLICAS_PER_PRIMARY = 1
# How long a primary may be unreachable before its replica is promoted; Redis's default is 15 s.
NODE_TIMEOUT_MS = 2000


@dataclass(frozen=True)
class ClusterPorts:
    """Each node's client port and cluster-bus port."""

    clients: tuple[int, ...]
    buses: tuple[int, ...]

    @classmethod
    def free(cls) -> "ClusterPorts":
        nodes = PRIMARIES * (1 + REPLICAS_PER_PRIMARY)
        return cls(
            clients=tuple(free_port() for _ in range(nodes)),
            buses=tuple(free_port() for _ in range(nodes)),
        )

    @classmethod
    def kept_in(cls, path: Path) -> "ClusterPorts":
        """The ports recorded in `path`, or free ones recorded there: the nodes' `nodes.conf`
        names each other by port, so a cluster started again must listen where it did."""
        if path.exists():
            recorded = json.loads(path.read_text())
            return cls(tuple(recorded["clients"]), tuple(recorded["buses"]))
        ports = cls.free()
        path.write_text(json.dumps({"clients": ports.clients, "buses": ports.buses}))
        return ports


def node_info(node: RedisServer, section: str) -> dict[str, str]:
    """`INFO <section>` (or `CLUSTER INFO` for "cluster") as a dict of strings."""
    with node.client() as client:
        command = ("CLUSTER", "INFO") if section == "cluster" else ("INFO", section)
        reply = client.execute_command(*command)
    if isinstance(reply, dict):
        return {key: str(value) for key, value in reply.items()}
    text = reply.decode() if isinstance(reply, bytes) else str(reply)
    return dict(line.split(":", 1) for line in text.splitlines() if ":" in line)


@dataclass
class RedisClusterServers:
    run_dir: Path
    ports: ClusterPorts
    node_timeout_ms: int = NODE_TIMEOUT_MS
    nodes: list[RedisServer] = field(init=False)

    def __post_init__(self) -> None:
        self._cli = require_binary("redis-cli", "run scripts/install/debian.sh")
        self.nodes = [
            RedisServer(
                self.run_dir,
                port,
                name=f"redis-cluster-{index}",
                extra_args=(
                    "--cluster-enabled",
                    "yes",
                    "--cluster-port",
                    str(bus),
                    "--cluster-config-file",
                    "nodes.conf",
                    "--cluster-node-timeout",
                    str(self.node_timeout_ms),
                ),
            )
            for index, (port, bus) in enumerate(
                zip(self.ports.clients, self.ports.buses, strict=True)
            )
        ]

    @property
    def url(self) -> str:
        """Where a cluster client starts: any node will do, it learns the others from it."""
        return f"redis://127.0.0.1:{self.nodes[0].port}"

    def start(self) -> None:
        for node in self.nodes:
            node.start()
        try:
            for node in self.nodes:
                node.wait_ready()
            if int(node_info(self.nodes[0], "cluster")["cluster_known_nodes"]) < len(self.nodes):
                self._create()
            self.wait_ready()
        except BaseException:
            self.stop()
            raise

    def _create(self) -> None:
        result = subprocess.run(
            [
                self._cli,
                "--cluster",
                "create",
                *(f"127.0.0.1:{node.port}" for node in self.nodes),
                "--cluster-replicas",
                str(REPLICAS_PER_PRIMARY),
                "--cluster-yes",
            ],
            capture_output=True,
            text=True,
            check=False,
        )
        if result.returncode != 0:
            raise ServerNotReady(f"redis-cli --cluster create failed:\n{result.stdout[-2000:]}")

    def running(self) -> list[RedisServer]:
        return [node for node in self.nodes if node.process.running()]

    def healthy(self) -> bool:
        """Every running node serves every slot, and every running replica is in sync."""
        for node in self.running():
            if node_info(node, "cluster")["cluster_state"] != "ok":
                return False
            replication = node_info(node, "replication")
            if replication["role"] == "slave" and replication["master_link_status"] != "up":
                return False
        return True

    def wait_ready(self, timeout: float = 60) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                if self.healthy():
                    return
            except Exception:  # noqa: BLE001 - a node still electing or syncing means "not yet"
                pass
            time.sleep(0.2)
        raise ServerNotReady(
            f"the Redis Cluster was not healthy within {timeout:.0f}s; last lines of "
            f"{self.nodes[0].process.log_path}:\n{self.nodes[0].process.log_tail()}"
        )

    def primary_of(self, key: str) -> RedisServer:
        """The running node that serves `key`'s hash slot as a primary now."""
        for node in self.running():
            with node.client() as client:
                slot = int(client.execute_command("CLUSTER", "KEYSLOT", key))
                for start, end, primary, *_replicas in client.execute_command("CLUSTER", "SLOTS"):
                    if start <= slot <= end:
                        port = int(primary[1])
                        return next(n for n in self.nodes if n.port == port)
        raise ServerNotReady(f"no running node of the Redis Cluster serves {key!r}")

    def replicas_of(self, primary: RedisServer) -> list[RedisServer]:
        """The nodes that replicate `primary` now (its `INFO replication`)."""
        with primary.client() as client:
            replication = client.info("replication")  # each `slaveN` parsed into a dict
        ports = {
            int(value["port"])
            for name, value in replication.items()
            if name.startswith("slave") and isinstance(value, dict)
        }
        return [node for node in self.nodes if node.port in ports]

    def stop(self) -> None:
        for node in self.nodes:
            node.process.stop()
