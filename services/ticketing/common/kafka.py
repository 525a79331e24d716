"""Kafka topics created explicitly, as configured (the broker does not auto-create them)."""

import asyncio
import logging
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.admin.config_resource import ConfigResource, ConfigResourceType
from aiokafka.errors import KafkaConnectionError, TopicAlreadyExistsError, for_code
from prometheus_client import Gauge

from ticketing.common.settings import topic_variable
from ticketing.common.topics import TopicFamily, TopicSpec

log = logging.getLogger(__name__)

TOPIC_SHORTFALL = Gauge(
    "ticketing_kafka_topic_shortfall",
    "1 for a topic that exists with fewer partitions, another replication factor or another "
    "min.insync.replicas than configured (it is left as it is: the WARNING log says what "
    "differs).",
    ["topic", "setting"],
)


class TopicSettingsError(RuntimeError):
    """The topics cannot be created as configured; the message names the setting to change."""


@dataclass(frozen=True)
class TopicDifference:
    """An existing topic that differs from its configuration, and is left as it is."""

    topic: str
    family: TopicFamily
    # "partitions", "replication_factor" or "min_insync_replicas"
    field: str
    existing: int
    configured: int

    @property
    def setting(self) -> str:
        return topic_variable(self.family, self.field)

    def __str__(self) -> str:
        return (
            f"topic {self.topic} exists with {self.field.replace('_', ' ')} {self.existing} "
            f"but {self.setting} is {self.configured}: left as it is"
        )


# How often a consumer refreshes what it knows of the topics. A topic just created may not be in
# the metadata of the broker a consumer asks first (a cluster of several), and the group then
# splits no partitions of it to anyone: with aiokafka's default of 5 minutes the topic would go
# unread that long. 10 s costs one small metadata request a consumer.
CONSUMER_METADATA_MAX_AGE_MS = 10_000


def _new_topic(name: str, spec: TopicSpec) -> NewTopic:
    configs = {}
    if spec.min_insync_replicas is not None:
        configs["min.insync.replicas"] = str(spec.min_insync_replicas)
    return NewTopic(name, spec.partitions, spec.replication_factor, topic_configs=configs)


# How often a starting process says it is still waiting for a broker, and tries again.
BROKER_WAIT_LOG_SECONDS = 10.0
BROKER_RETRY_SECONDS = 1.0


async def _reachable_admin(bootstrap: str, wait_seconds: float) -> AIOKafkaAdminClient:
    """A started admin client; while no broker answers, tried again for up to `wait_seconds`
    (at a first install the services start before the broker is up)."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + wait_seconds
    next_log = loop.time()
    while True:
        admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
        try:
            await admin.start()
            return admin
        except KafkaConnectionError:
            await admin.close()
            now = loop.time()
            if now >= deadline:
                raise
            if now >= next_log:
                log.warning(
                    "no Kafka broker answers at %s yet; waiting up to %.0f s more",
                    bootstrap,
                    deadline - now,
                )
                next_log = now + BROKER_WAIT_LOG_SECONDS
            await asyncio.sleep(BROKER_RETRY_SECONDS)


async def ensure_topics(
    bootstrap: str, specs: Mapping[str, TopicSpec], wait_seconds: float = 0.0
) -> list[TopicDifference]:
    """Create the topics that do not exist yet (the broker does not auto-create them), each as
    its spec says; report the existing ones that differ and leave them as they are. A broker
    that does not answer is waited for up to `wait_seconds`.

    Fewer partitions than configured is a warning, not a refusal: the service works, only fewer
    of a group's consumers have a partition to read. Adding partitions moves keys to other
    partitions and so breaks the per-key order of what is in flight: a person decides when, and
    the service does not stop a sale meanwhile. A different replication factor likewise needs a
    reassignment only an administrator runs.
    """
    admin = await _reachable_admin(bootstrap, wait_seconds)
    try:
        brokers = len((await admin.describe_cluster())["brokers"])
        for spec in specs.values():
            if spec.replication_factor > brokers:
                raise TopicSettingsError(
                    f"{topic_variable(spec.family, 'replication_factor')}="
                    f"{spec.replication_factor} asks for more copies of each {spec.family} "
                    f"topic than the {brokers} broker(s) of {bootstrap} can hold"
                )
        existing = set(await admin.list_topics())
        missing = [_new_topic(name, spec) for name, spec in specs.items() if name not in existing]
        if missing:
            response = await admin.create_topics(missing)
            for topic, code, *_ in response.topic_errors:
                # Another process may create it between our list and our create.
                if code and for_code(code) is not TopicAlreadyExistsError:
                    raise TopicSettingsError(
                        f"creating topic {topic} failed: {for_code(code).__name__}"
                    )
        present = [name for name in specs if name in existing]
        differences = _compare(await admin.describe_topics(present), specs) if present else []
        differences += await _compare_min_insync(admin, present, specs)
    finally:
        await admin.close()
    for difference in differences:
        log.warning("%s", difference)
        TOPIC_SHORTFALL.labels(difference.topic, difference.setting).set(1)
    return differences


def _compare(
    described: list[dict[str, Any]], specs: Mapping[str, TopicSpec]
) -> list[TopicDifference]:
    differences = []
    for topic in described:
        name, partitions = topic["topic"], topic["partitions"]
        # Created a moment ago by another process, its metadata not yet everywhere: it was
        # created from the same settings, so there is nothing to tell.
        if topic["error_code"] or not partitions:
            continue
        spec = specs[name]
        replicas = len(partitions[0]["replicas"])
        # More partitions than configured do no harm: only fewer, or other copies, are told.
        if len(partitions) < spec.partitions:
            differences.append(
                TopicDifference(name, spec.family, "partitions", len(partitions), spec.partitions)
            )
        if replicas != spec.replication_factor:
            differences.append(
                TopicDifference(
                    name, spec.family, "replication_factor", replicas, spec.replication_factor
                )
            )
    return differences


MIN_INSYNC = "min.insync.replicas"


async def _compare_min_insync(
    admin: AIOKafkaAdminClient, present: list[str], specs: Mapping[str, TopicSpec]
) -> list[TopicDifference]:
    """The existing topics whose min.insync.replicas (set on the topic or the broker's default)
    is not the configured one; topics configured without one are not compared."""
    wanted = [name for name in present if specs[name].min_insync_replicas is not None]
    if not wanted:
        return []
    resources = [
        ConfigResource(ConfigResourceType.TOPIC, name, {MIN_INSYNC: None}) for name in wanted
    ]
    existing: dict[str, int] = {}
    for response in await admin.describe_configs(resources):
        # Each resource: (error code, message, type, name, entries); each entry starts with
        # (name, value).
        for error_code, _, _, topic, entries in response.resources:
            values = [value for key, value, *_ in entries if key == MIN_INSYNC]
            if not error_code and values and values[0] is not None:
                existing[topic] = int(values[0])
    differences = []
    for name in wanted:
        configured = specs[name].min_insync_replicas
        if name in existing and configured is not None and existing[name] != configured:
            differences.append(
                TopicDifference(
                    name, specs[name].family, "min_insync_replicas", existing[name], configured
                )
            )
    return differences
