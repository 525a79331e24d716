"""The consumer runner handles records as they arrive: a slow message holds back neither other
keys nor the fetch, one key's messages stay in order, and the committed offset never passes a
message whose handling has not finished, so a restart gets it again."""

import asyncio
import contextlib
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from typing import Any

import redis.asyncio as aioredis
from aiokafka import TopicPartition
from aiokafka.admin import AIOKafkaAdminClient, NewPartitions
from prometheus_client import REGISTRY
from ticketing.common.background import background
from ticketing.common.consumer import ConsumerRunner, FailureHandler, PartitionProgress
from ticketing.common.envelope import Envelope
from ticketing.common.kafka import ensure_topics
from ticketing.common.producer import RenewingProducer
from ticketing.common.settings import CommonSettings
from ticketing.common.topics import TopicFamily, TopicSpec

from tests.core.sale_kit import eventually

Handle = Callable[[Envelope], Awaitable[None]]


async def ignore_failure(record: Any, error: BaseException) -> None:
    raise AssertionError(f"no message should fail here: {error!r}")


class Topic:
    """A one-partition topic of the test's own, so offsets are the order messages were sent."""

    def __init__(self, settings: CommonSettings, producer: RenewingProducer) -> None:
        self.settings = settings
        self.producer = producer
        self.name = f"{settings.kafka_topic_prefix}runner.{uuid.uuid4().hex[:6]}"
        self.group = f"{self.name}.group"

    async def send(self, key: str, message_id: str) -> None:
        envelope = Envelope.new("test", key=key, message_id=message_id, payload={})
        await self.producer.send_and_wait(self.name, envelope.to_bytes(), key=key.encode())

    def runner(
        self,
        redis: aioredis.Redis,
        handler: Handle,
        failure_handler: FailureHandler = ignore_failure,
        also: Sequence[str] = (),
    ) -> ConsumerRunner:
        return ConsumerRunner(
            bootstrap=self.settings.kafka_bootstrap,
            group=self.group,
            topics=[self.name, *also],
            handler=handler,
            failure_handler=failure_handler,
            redis=redis,
            redis_prefix=self.settings.redis_key_prefix,
            dedup_window_seconds=self.settings.dedup_window_seconds,
            commit_interval_seconds=0.05,
            stuck_backoff_seconds=0.05,
        )

    async def committed(self) -> int | None:
        admin = AIOKafkaAdminClient(bootstrap_servers=self.settings.kafka_bootstrap)
        await admin.start()
        try:
            offsets = await admin.list_consumer_group_offsets(self.group)
        finally:
            await admin.close()
        found = offsets.get(TopicPartition(self.name, 0))
        return None if found is None or found.offset < 0 else int(found.offset)


@contextlib.asynccontextmanager
async def one_partition_topic(settings: CommonSettings) -> AsyncIterator[Topic]:
    producer = RenewingProducer(settings.kafka_bootstrap, "runner-test")
    await producer.start()
    try:
        topic = Topic(settings, producer)
        await ensure_topics(
            settings.kafka_bootstrap, {topic.name: TopicSpec(TopicFamily.MAIN, 1, 1)}
        )
        yield topic
    finally:
        await producer.stop()


def test_commit_position_moves_only_past_the_finished_prefix() -> None:
    progress = PartitionProgress()
    for offset in (10, 11, 12):
        progress.started(offset)
    progress.finished(12)
    progress.finished(11)
    assert progress.to_commit() is None
    progress.finished(10)
    assert progress.to_commit() == 13
    progress.committed(13)
    assert progress.to_commit() is None


async def test_a_slow_message_does_not_hold_back_one_sent_after_it_with_another_key(
    settings: CommonSettings, redis_client: aioredis.Redis
) -> None:
    slow_started, fast_done = asyncio.Event(), asyncio.Event()
    finished: list[str] = []

    async def handle(envelope: Envelope) -> None:
        if envelope.key == "slow":
            slow_started.set()
            # Finishes only once the message sent after it was handled: a runner that fetched
            # nothing while this one ran would never get there.
            await fast_done.wait()
        else:
            fast_done.set()
        finished.append(envelope.key)

    async with (
        one_partition_topic(settings) as topic,
        background(runner=topic.runner(redis_client, handle).run()),
    ):
        await topic.send("slow", "m1")
        await asyncio.wait_for(slow_started.wait(), 60)
        await topic.send("fast", "m2")

        async def both_finished() -> bool:
            return len(finished) == 2

        await eventually(both_finished, within=60)
    assert finished == ["fast", "slow"]


async def test_one_keys_messages_on_two_topics_are_handled_in_the_order_they_arrived(
    settings: CommonSettings, redis_client: aioredis.Redis
) -> None:
    first_started = asyncio.Event()
    finished: list[str] = []

    async def handle(envelope: Envelope) -> None:
        if envelope.message_id == "paid":
            first_started.set()
            # Long enough for the later message to be fetched while this one is handled.
            await asyncio.sleep(0.5)
        finished.append(envelope.message_id)

    async with (
        one_partition_topic(settings) as paid,
        one_partition_topic(settings) as failed,
        background(runner=paid.runner(redis_client, handle, also=[failed.name]).run()),
    ):
        await paid.send("r1", "paid")
        await asyncio.wait_for(first_started.wait(), 60)
        await failed.send("r1", "payment_failed")

        async def both_finished() -> bool:
            return len(finished) == 2

        await eventually(both_finished, within=60)
    assert finished == ["paid", "payment_failed"]


async def test_a_message_still_being_handled_comes_again_after_a_restart_and_later_ones_do_not(
    settings: CommonSettings, redis_client: aioredis.Redis
) -> None:
    first: list[str] = []
    never = asyncio.Event()

    async def stalls_on_b(envelope: Envelope) -> None:
        if envelope.message_id == "b":
            await never.wait()
        first.append(envelope.message_id)

    async with one_partition_topic(settings) as topic:
        for message_id in ("a", "b", "c"):
            await topic.send(message_id, message_id)
        async with background(runner=topic.runner(redis_client, stalls_on_b).run()):

            async def a_committed_and_c_done() -> bool:
                # a and c have different keys: either may finish first.
                return sorted(first) == ["a", "c"] and await topic.committed() == 1

            await eventually(a_committed_and_c_done, within=60)
            # Several commit rounds pass with c finished: none may move past b.
            await asyncio.sleep(0.5)
            assert await topic.committed() == 1

        second: list[str] = []

        async def records(envelope: Envelope) -> None:
            second.append(envelope.message_id)

        async with background(runner=topic.runner(redis_client, records).run()):

            async def b_done() -> bool:
                return second == ["b"] and await topic.committed() == 3

            await eventually(b_done, within=60)
    assert sorted(first) == ["a", "c"]


async def test_a_message_the_failure_hook_could_not_place_is_handled_again_before_its_key_moves_on(
    settings: CommonSettings, redis_client: aioredis.Redis
) -> None:
    events: list[str] = []

    async def handle(envelope: Envelope) -> None:
        if envelope.message_id == "a1":
            events.append("a1 failed")
            raise RuntimeError("database busy")
        events.append(f"{envelope.message_id} handled")

    async def hook(record: Any, error: BaseException) -> None:
        if events.count("a1 failed") == 1:
            raise ConnectionError("the retry topic is away")
        events.append("a1 placed")

    async with one_partition_topic(settings) as topic:
        await topic.send("a", "a1")
        await topic.send("a", "a2")
        await topic.send("b", "b1")
        async with background(runner=topic.runner(redis_client, handle, hook).run()):

            async def all_committed() -> bool:
                return await topic.committed() == 3

            await eventually(all_committed, within=60)
    assert [e for e in events if e.startswith("a")] == [
        "a1 failed",
        "a1 failed",
        "a1 placed",
        "a2 handled",
    ]
    assert "b1 handled" in events


def _duplicates(topic: Topic) -> float:
    labels = {"group": topic.group, "topic": topic.name, "outcome": "duplicate"}
    return REGISTRY.get_sample_value("ticketing_messages_total", labels) or 0.0


async def test_a_message_delivered_again_within_the_window_is_applied_once(
    settings: CommonSettings, redis_client: aioredis.Redis
) -> None:
    applied: list[str] = []

    async def handle(envelope: Envelope) -> None:
        applied.append(envelope.message_id)

    async with one_partition_topic(settings) as topic:
        await topic.send("a", "m1")
        async with background(runner=topic.runner(redis_client, handle).run()):

            async def first_committed() -> bool:
                return await topic.committed() == 1

            await eventually(first_committed, within=60)
        # Delivered again, to a runner started afresh as after a crash.
        await topic.send("a", "m1")
        async with background(runner=topic.runner(redis_client, handle).run()):

            async def second_committed() -> bool:
                return await topic.committed() == 2

            await eventually(second_committed, within=60)
    assert applied == ["m1"]
    assert _duplicates(topic) == 1


async def test_an_id_older_than_the_window_is_gone_from_redis_and_applied_again(
    settings: CommonSettings, redis_client: aioredis.Redis
) -> None:
    window = 2
    short = settings.model_copy(update={"dedup_window_seconds": window})
    applied: list[str] = []

    async def handle(envelope: Envelope) -> None:
        applied.append(envelope.message_id)

    async with (
        one_partition_topic(short) as topic,
        background(runner=topic.runner(redis_client, handle).run()),
    ):
        await topic.send("a", "m1")

        async def applied_once() -> bool:
            return applied == ["m1"]

        await eventually(applied_once, within=60)
        pattern = f"{short.redis_key_prefix}:processed:{{{topic.group}}}:*"
        [bucket] = [key async for key in redis_client.scan_iter(match=pattern)]
        assert await redis_client.sismember(bucket, "m1")
        # Kept one to two windows after the mark, by an expiry Redis holds.
        assert 0 < await redis_client.pttl(bucket) <= 2 * window * 1000

        async def bucket_gone() -> bool:
            return await redis_client.exists(bucket) == 0

        await eventually(bucket_gone, within=60)
        await topic.send("a", "m1")

        async def applied_again() -> bool:
            return applied == ["m1", "m1"]

        await eventually(applied_again, within=60)
    assert _duplicates(topic) == 0


async def test_partitions_added_to_a_topic_while_the_consumer_runs_are_read_within_seconds(
    settings: CommonSettings, redis_client: aioredis.Redis
) -> None:
    """The group splits only the partitions its consumers know of: what they know is refreshed
    every few seconds, not aiokafka's 5 minutes. The same refresh catches a new topic whose
    metadata had not reached the broker a starting consumer asked (seen on three brokers)."""
    handled: list[str] = []

    async def handle(envelope: Envelope) -> None:
        handled.append(envelope.message_id)

    def was_handled(message_id: str) -> Callable[[], Awaitable[bool]]:
        async def done() -> bool:
            return message_id in handled

        return done

    async with (
        one_partition_topic(settings) as topic,
        background(runner=topic.runner(redis_client, handle).run()),
    ):
        await topic.send("k1", "on-partition-0")
        await eventually(was_handled("on-partition-0"), within=60)

        admin = AIOKafkaAdminClient(bootstrap_servers=settings.kafka_bootstrap)
        await admin.start()
        try:
            await admin.create_partitions({topic.name: NewPartitions(total_count=2)})
        finally:
            await admin.close()
        envelope = Envelope.new("test", key="k2", message_id="on-partition-1", payload={})
        # A new producer: the test's own knows the topic's one partition only.
        producer = RenewingProducer(settings.kafka_bootstrap, "runner-test-partitions")
        await producer.start()
        try:
            await producer.send_and_wait(topic.name, envelope.to_bytes(), key=b"k2", partition=1)
        finally:
            await producer.stop()

        await eventually(was_handled("on-partition-1"), within=60)
