"""Three KRaft nodes on loopback, each a broker and a controller, as one Kafka cluster: what a
production Kafka is made of, small enough for a two-core machine."""

import asyncio
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from aiokafka.admin import AIOKafkaAdminClient
from ticketing.common.settings import topic_variable
from ticketing.common.topics import TopicFamily

from ticketing_dev.process import ManagedProcess, ServerNotReady
from ticketing_dev.servers import KafkaQuorum, KafkaServer, run_kafka_tool

NODES = 3
# Every topic the services create on the trio: a copy on each node, and a write acknowledged
# (acks=all) once two hold it, so one node may be down without stopping a sale.
REPLICATION_FACTOR = 3
MIN_INSYNC_REPLICAS = 2
# Each node's heap: three JVMs share the machine with MariaDB, Redis and the services.
NODE_HEAP_MB = 512


@dataclass
class KafkaTrio:
    """Node n (1, 2, 3) listens on ports[n - 1] as a broker and controller_ports[n - 1] as a
    controller; all three are voters of the metadata quorum."""

    run_dir: Path
    ports: Sequence[int]
    controller_ports: Sequence[int]
    nodes: list[KafkaServer] = field(init=False)

    def __post_init__(self) -> None:
        if not len(self.ports) == len(self.controller_ports) == NODES:
            raise ValueError(f"a Kafka trio needs {NODES} broker and {NODES} controller ports")
        ids = range(1, NODES + 1)
        quorum = KafkaQuorum(dict(zip(ids, self.controller_ports, strict=True)))
        self.nodes = [
            KafkaServer(self.run_dir, port, controller_port, node_id, quorum, NODE_HEAP_MB)
            for node_id, port, controller_port in zip(
                ids, self.ports, self.controller_ports, strict=True
            )
        ]

    @property
    def bootstrap(self) -> str:
        return ",".join(node.bootstrap for node in self.nodes)

    @property
    def processes(self) -> list[ManagedProcess]:
        return [node.process for node in self.nodes]

    def topic_env(self) -> dict[str, str]:
        """The services' topic settings for this cluster, every topic family alike."""
        return {
            topic_variable(family, name): str(value)
            for family in TopicFamily
            for name, value in (
                ("replication_factor", REPLICATION_FACTOR),
                ("min_insync_replicas", MIN_INSYNC_REPLICAS),
            )
        }

    def node(self, node_id: int) -> KafkaServer:
        return self.nodes[node_id - 1]

    def start(self) -> None:
        self.run_dir.mkdir(parents=True, exist_ok=True)
        for node in self.nodes:
            node.start()

    def wait_ready(self, timeout: float = 120) -> None:
        """Until every node answers a metadata request that lists all three brokers."""
        for node in self.nodes:
            node.wait_ready(timeout)

    def fully_replicated(self) -> bool:
        """Whether every replica of every partition is in sync: what an operator waits for
        after a node comes back, before taking the next one down."""

        async def request() -> bool:
            admin = AIOKafkaAdminClient(bootstrap_servers=self.bootstrap, request_timeout_ms=3000)
            await admin.start()
            try:
                topics = await admin.describe_topics()
            finally:
                await admin.close()
            partitions = [p for topic in topics for p in topic["partitions"]]
            return all(set(p["isr"]) == set(p["replicas"]) for p in partitions)

        return asyncio.run(request())

    def restart(self, node: KafkaServer, timeout: float = 180) -> None:
        """Start a node that was stopped or killed, on its data, and wait until it is back in
        the cluster and every partition's replicas are all in sync again (it has caught up)."""
        node.start()
        node.wait_ready(timeout)
        node.process.wait_ready(self.fully_replicated, timeout, interval=0.5)

    def active_controller(self) -> KafkaServer:
        """The node that leads the metadata quorum now, as Kafka's own kafka-metadata-quorum
        tool reports it from the running controllers."""
        running = [node for node in self.nodes if node.process.running()]
        status = run_kafka_tool(
            "org.apache.kafka.tools.MetadataQuorumCommand",
            [
                "--bootstrap-controller",
                ",".join(f"127.0.0.1:{node.controller_port}" for node in running),
                "describe",
                "--status",
            ],
        )
        leader = re.search(r"^LeaderId:\s*(\d+)", status, re.MULTILINE)
        if leader is None:
            raise ServerNotReady(f"the metadata quorum has no leader now:\n{status}")
        return self.node(int(leader.group(1)))
