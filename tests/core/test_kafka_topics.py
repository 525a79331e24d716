"""Topics are created as the settings say, per family, and an existing topic is never altered:
against the session's real (single) broker, read back with the admin client."""

import asyncio
import logging
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.admin.config_resource import ConfigResource, ConfigResourceType
from aiokafka.errors import KafkaConnectionError
from prometheus_client import REGISTRY
from pydantic import ValidationError
from ticketing.common.kafka import TopicSettingsError, ensure_topics
from ticketing.common.settings import CommonSettings
from ticketing.common.topics import RESERVATION_PAID, TopicFamily, Topics, TopicSpec
from ticketing.retry.policy import ladder_topics
from ticketing_dev.ports import free_port
from ticketing_dev.servers import KafkaServer

# DescribeConfigs' config_source of a value set on the topic itself.
TOPIC_CONFIG = 1
METADATA_SECONDS = 10


def with_topics(settings: CommonSettings, **values: Any) -> CommonSettings:
    """The test's settings with other topic settings, validated as the environment would be."""
    return CommonSettings(**{**settings.model_dump(), **values})


@pytest.fixture
async def admin(settings: CommonSettings) -> AsyncIterator[AIOKafkaAdminClient]:
    client = AIOKafkaAdminClient(bootstrap_servers=settings.kafka_bootstrap)
    await client.start()
    try:
        yield client
    finally:
        await client.close()


async def layout(admin: AIOKafkaAdminClient, names: list[str]) -> dict[str, tuple[int, int]]:
    """Each topic's (partitions, replication factor) as the broker has it, once its metadata
    has reached the broker that answers (a new topic's may lag its creation)."""
    deadline = asyncio.get_running_loop().time() + METADATA_SECONDS
    while True:
        described = await admin.describe_topics(names)
        if all(t["partitions"] for t in described) or asyncio.get_running_loop().time() > deadline:
            return {
                t["topic"]: (len(t["partitions"]), len(t["partitions"][0]["replicas"]))
                for t in described
            }
        await asyncio.sleep(0.1)


async def min_insync(admin: AIOKafkaAdminClient, name: str) -> tuple[str, int]:
    """The topic's min.insync.replicas and where that value comes from."""
    resource = ConfigResource(ConfigResourceType.TOPIC, name, {"min.insync.replicas": None})
    (response,) = await admin.describe_configs([resource])
    ((*_, entries),) = response.resources
    ((_, value, _, source, *_),) = entries
    return value, source


async def test_missing_topics_are_created_with_their_familys_settings(
    settings: CommonSettings, admin: AIOKafkaAdminClient
) -> None:
    settings = with_topics(
        settings,
        kafka_main_partitions=5,
        kafka_main_min_insync_replicas=1,
        kafka_retry_partitions=2,
        kafka_dead_letter_partitions=1,
    )
    topics = Topics(settings.kafka_topic_prefix)
    families = {topics.reservation_paid: TopicFamily.MAIN} | ladder_topics(topics)

    assert await ensure_topics(settings.kafka_bootstrap, settings.topic_specs(families)) == []

    created = await layout(admin, list(families))
    expected = {
        TopicFamily.MAIN: (5, 1),
        TopicFamily.RETRY: (2, 1),
        TopicFamily.DEAD_LETTER: (1, 1),
    }
    assert created == {name: expected[family] for name, family in families.items()}
    assert await min_insync(admin, topics.reservation_paid) == ("1", TOPIC_CONFIG)
    _, unset_source = await min_insync(admin, topics.dead_letter(RESERVATION_PAID))
    assert unset_source != TOPIC_CONFIG


async def test_an_existing_topic_with_fewer_partitions_is_left_as_it_is_and_reported(
    settings: CommonSettings, admin: AIOKafkaAdminClient, caplog: pytest.LogCaptureFixture
) -> None:
    topics = Topics(settings.kafka_topic_prefix)
    short, wide = topics.reservation_paid, topics.reservation_requested
    await ensure_topics(
        settings.kafka_bootstrap,
        {short: TopicSpec(TopicFamily.MAIN, 2, 1), wide: TopicSpec(TopicFamily.MAIN, 6, 1)},
    )
    assert await layout(admin, [short, wide]) == {short: (2, 1), wide: (6, 1)}
    settings = with_topics(settings, kafka_main_partitions=4)

    with caplog.at_level(logging.WARNING, logger="ticketing.common.kafka"):
        differences = await ensure_topics(
            settings.kafka_bootstrap,
            settings.topic_specs(dict.fromkeys([short, wide], TopicFamily.MAIN)),
        )

    assert await layout(admin, [short, wide]) == {short: (2, 1), wide: (6, 1)}
    assert [(d.topic, d.setting, d.existing, d.configured) for d in differences] == [
        (short, "TICKETING_KAFKA_MAIN_PARTITIONS", 2, 4)
    ]
    assert [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING] == [
        f"topic {short} exists with partitions 2 but TICKETING_KAFKA_MAIN_PARTITIONS is 4: "
        "left as it is"
    ]
    shortfall = REGISTRY.get_sample_value(
        "ticketing_kafka_topic_shortfall",
        {"topic": short, "setting": "TICKETING_KAFKA_MAIN_PARTITIONS"},
    )
    assert shortfall == 1


async def test_an_existing_topic_with_another_min_insync_replicas_is_left_as_it_is_and_reported(
    settings: CommonSettings, admin: AIOKafkaAdminClient
) -> None:
    topics = Topics(settings.kafka_topic_prefix)
    strict, unset = topics.reservation_paid, topics.reservation_requested
    # Set on the topic by someone else (acks=all then needs two copies in sync), or left to the
    # broker's default (1 here).
    await ensure_topics(
        settings.kafka_bootstrap,
        {
            strict: TopicSpec(TopicFamily.MAIN, 1, 1, min_insync_replicas=2),
            unset: TopicSpec(TopicFamily.MAIN, 1, 1),
        },
    )
    settings = with_topics(settings, kafka_main_partitions=1, kafka_main_min_insync_replicas=1)

    differences = await ensure_topics(
        settings.kafka_bootstrap,
        settings.topic_specs(dict.fromkeys([strict, unset], TopicFamily.MAIN)),
    )

    assert [(d.topic, d.setting, d.existing, d.configured) for d in differences] == [
        (strict, "TICKETING_KAFKA_MAIN_MIN_INSYNC_REPLICAS", 2, 1)
    ]
    assert await min_insync(admin, strict) == ("2", TOPIC_CONFIG)
    assert str(differences[0]) == (
        f"topic {strict} exists with min insync replicas 2 but "
        "TICKETING_KAFKA_MAIN_MIN_INSYNC_REPLICAS is 1: left as it is"
    )


async def test_more_copies_than_the_cluster_has_brokers_is_refused_naming_the_setting(
    settings: CommonSettings, admin: AIOKafkaAdminClient
) -> None:
    settings = with_topics(settings, kafka_retry_replication_factor=2)
    topics = Topics(settings.kafka_topic_prefix)
    families = ladder_topics(topics)

    with pytest.raises(TopicSettingsError) as refused:
        await ensure_topics(settings.kafka_bootstrap, settings.topic_specs(families))

    assert str(refused.value).startswith(
        "TICKETING_KAFKA_RETRY_REPLICATION_FACTOR=2 asks for more copies of each retry topic "
        "than the 1 broker(s)"
    )
    assert not set(families) & set(await admin.list_topics())


def test_min_insync_replicas_above_the_replication_factor_is_refused() -> None:
    with pytest.raises(ValidationError, match="TICKETING_KAFKA_MAIN_MIN_INSYNC_REPLICAS=2 exceeds"):
        CommonSettings(kafka_main_replication_factor=1, kafka_main_min_insync_replicas=2)


async def test_topics_wait_for_a_broker_that_comes_up_after_the_service(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """As at a first install, where the services start before the broker: creating the topics
    waits for it, saying so, instead of failing the process."""
    broker = KafkaServer(tmp_path, free_port(), free_port())
    specs = {"late.broker": TopicSpec(TopicFamily.MAIN, 2, 1)}
    creating = asyncio.create_task(ensure_topics(broker.bootstrap, specs, wait_seconds=240))
    try:
        await asyncio.sleep(2)
        assert not creating.done(), "creating the topics gave up on a broker not up yet"
        assert "no Kafka broker answers at" in caplog.text
        await asyncio.to_thread(broker.start)
        assert await asyncio.wait_for(creating, 240) == []
        client = AIOKafkaAdminClient(bootstrap_servers=broker.bootstrap)
        await client.start()
        try:
            assert await layout(client, ["late.broker"]) == {"late.broker": (2, 1)}
        finally:
            await client.close()
    finally:
        creating.cancel()
        await asyncio.gather(creating, return_exceptions=True)
        await asyncio.to_thread(broker.process.stop)


async def test_a_broker_that_never_answers_fails_the_start_once_the_wait_is_over() -> None:
    started = asyncio.get_running_loop().time()
    with pytest.raises(KafkaConnectionError):
        await ensure_topics(
            f"127.0.0.1:{free_port()}", {"no.broker": TopicSpec(TopicFamily.MAIN, 1, 1)}, 2.0
        )
    assert asyncio.get_running_loop().time() - started >= 2.0
