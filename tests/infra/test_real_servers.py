"""The backing servers are the real ones: Lua on Redis, transactions on MariaDB, groups on Kafka."""

import asyncio
import uuid

import asyncmy
import pytest
import redis
import redis.asyncio as aioredis
from aiokafka import AIOKafkaConsumer
from sqlalchemy.engine import make_url
from ticketing.common.kafka import ensure_topics
from ticketing.common.producer import RenewingProducer
from ticketing.common.settings import CommonSettings
from ticketing.common.topics import TopicFamily, Topics
from ticketing_dev.redis_cluster import RedisClusterServers, node_info

CLAIM_IF_FREE = """
if redis.call('EXISTS', KEYS[1]) == 1 then return 0 end
redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
return 1
"""


async def test_redis_runs_lua_atomically(redis_client: aioredis.Redis, test_id: str) -> None:
    claim = redis_client.register_script(CLAIM_IF_FREE)
    key = f"t{test_id}:seat"
    results = await asyncio.gather(
        *(claim(keys=[key], args=[f"buyer-{i}", 5000]) for i in range(50))
    )
    assert sorted(results) == [0] * 49 + [1]
    assert 0 < await redis_client.pttl(key) <= 5000


async def _connect(database_url: str) -> asyncmy.Connection:
    url = make_url(database_url)
    return await asyncmy.connect(
        host=url.host,
        port=url.port,
        user=url.username,
        password=url.password,
        db=url.database,
        autocommit=False,
    )


async def test_mariadb_commits_and_rolls_back_through_asyncmy(database_url: str) -> None:
    conn = await _connect(database_url)
    try:
        async with conn.cursor() as cur:
            await cur.execute(
                "CREATE TABLE seat (id INT PRIMARY KEY, sold_to VARCHAR(40)) ENGINE=InnoDB"
            )
            await cur.execute("INSERT INTO seat VALUES (1, NULL), (2, NULL)")
            await conn.commit()
            await cur.execute("UPDATE seat SET sold_to = 'alice' WHERE id = 1")
            await conn.rollback()
            await cur.execute("UPDATE seat SET sold_to = 'bob' WHERE id = 2")
            await conn.commit()
            await cur.execute("SELECT id, sold_to FROM seat ORDER BY id")
            assert await cur.fetchall() == ((1, None), (2, "bob"))
    finally:
        conn.close()


async def test_kafka_delivers_to_one_consumer_group_member(settings: CommonSettings) -> None:
    topic = Topics(settings.kafka_topic_prefix).reservation_requested
    await ensure_topics(settings.kafka_bootstrap, settings.topic_specs({topic: TopicFamily.MAIN}))
    producer = RenewingProducer(settings.kafka_bootstrap, "infra-test")
    await producer.start()
    try:
        sent = [f"reservation-{i}".encode() for i in range(20)]
        for value in sent:
            await producer.send_and_wait(topic, value, key=value)
    finally:
        await producer.stop()

    group = f"group-{uuid.uuid4().hex[:8]}"
    consumer = AIOKafkaConsumer(
        topic,
        bootstrap_servers=settings.kafka_bootstrap,
        group_id=group,
        auto_offset_reset="earliest",
        enable_auto_commit=False,
    )
    await consumer.start()
    received: list[bytes] = []
    try:
        async with asyncio.timeout(60):
            while len(received) < len(sent):
                batch = await consumer.getmany(timeout_ms=1000)
                received += [m.value for msgs in batch.values() for m in msgs if m.value]
        await consumer.commit()
        committed = {tp: await consumer.committed(tp) for tp in consumer.assignment()}
    finally:
        await consumer.stop()
    assert sorted(received) == sorted(sent)
    assert sum(offset or 0 for offset in committed.values()) == len(sent)


def test_redis_cluster_has_three_primaries_each_replicated_and_refuses_cross_slot(
    redis_cluster: RedisClusterServers, test_id: str
) -> None:
    replicas_of: dict[str, int] = {}
    for node in redis_cluster.nodes:
        assert node_info(node, "cluster")["cluster_state"] == "ok"
        replication = node_info(node, "replication")
        if replication["role"] == "slave":
            assert replication["master_link_status"] == "up"
            replicas_of[replication["master_port"]] = (
                replicas_of.get(replication["master_port"], 0) + 1
            )
    assert sorted(replicas_of.values()) == [1, 1, 1]
    primary = redis_cluster.primary_of(f"t{test_id}:{{a}}")
    with (
        primary.client() as client,
        pytest.raises(redis.ResponseError, match="don't hash to the same slot"),
    ):
        client.mset({f"t{test_id}:{{a}}": 1, f"t{test_id}:{{b}}": 2})
