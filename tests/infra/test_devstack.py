"""The local stack's command: it fails with one clear sentence when something is missing or taken,
and runs a Redis Cluster for the settings when asked."""

import asyncio
import socket
from pathlib import Path

import pytest
from ticketing.common.redis_client import connect_redis
from ticketing.common.settings import CommonSettings
from ticketing.common.topics import TopicFamily
from ticketing_dev.cli import main
from ticketing_dev.ports import free_port
from ticketing_dev.redis_cluster import ClusterPorts, RedisClusterServers
from ticketing_dev.servers import KafkaServer, MissingPrerequisite
from ticketing_dev.stack import LocalStack, StackPorts


def test_up_refuses_a_taken_port_with_one_sentence(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    with socket.socket() as holder:
        holder.bind(("127.0.0.1", 0))
        holder.listen()
        taken = holder.getsockname()[1]
        code = main(["--run-dir", str(tmp_path), "up", "--redis-port", str(taken)])
    err = capsys.readouterr().err.strip()
    assert code == 1
    assert f"port {taken} for Redis is already in use" in err
    assert len(err.splitlines()) == 1


def test_kafka_without_its_jars_names_the_install_step(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("TICKETING_CACHE", str(tmp_path / "empty-cache"))
    with pytest.raises(MissingPrerequisite, match=r"run scripts/install/kafka\.sh"):
        KafkaServer(tmp_path, 1, 2)


def test_a_three_broker_stack_points_services_at_all_three_with_three_copies_of_each_topic(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    ports = StackPorts(free_port(), free_port(), free_port(), free_port())
    trio = LocalStack(tmp_path, ports, kafka_brokers=3)
    for name, value in trio.env().items():
        monkeypatch.setenv(name, value)
    settings = CommonSettings()

    assert len(settings.kafka_bootstrap.split(",")) == 3
    assert settings.kafka_bootstrap.startswith(f"127.0.0.1:{ports.kafka},")
    for family in TopicFamily:
        spec = settings.topic_spec(family)
        assert (spec.replication_factor, spec.min_insync_replicas) == (3, 2)


def test_a_second_stack_runs_beside_the_first(stack: LocalStack, tmp_path: Path) -> None:
    """The second with a Redis Cluster, as `./dev up --redis-cluster` starts one: the settings
    it hands out point at the cluster."""
    run_dir = tmp_path / "second"
    second = LocalStack(run_dir, type(stack.ports).from_env(), with_redis_cluster=True)
    second.start()
    try:
        assert second.redis.ping() and second.mariadb.select_one() and second.kafka.metadata()
        assert stack.redis.ping()
        assert set(vars(second.ports).values()).isdisjoint(vars(stack.ports).values())
        env = second.env()
        assert env["TICKETING_REDIS_CLUSTER"] == "true"
        settings = CommonSettings(redis_url=env["TICKETING_REDIS_URL"], redis_cluster=True)
        assert asyncio.run(_round_trip(settings)) == b"held"
    finally:
        second.stop()
    assert not second.redis.process.running()
    assert second.redis_cluster is not None and not second.redis_cluster.running()


async def _round_trip(settings: CommonSettings) -> bytes | None:
    """A write and a read through the services' own client, on the cluster."""
    client = connect_redis(settings)
    try:
        await client.set("tk:{sale}:probe", "held")
        value: bytes | None = await client.get("tk:{sale}:probe")
        return value
    finally:
        await client.aclose()


def test_a_redis_cluster_started_again_on_its_run_dir_rejoins_with_its_data(
    tmp_path: Path,
) -> None:
    ports = ClusterPorts.kept_in(tmp_path / "ports.json")
    first = RedisClusterServers(tmp_path, ports)
    first.start()
    try:
        with first.primary_of("tk:{sale}:probe").client() as client:
            client.set("tk:{sale}:probe", "kept")
    finally:
        first.stop()
    again = RedisClusterServers(tmp_path, ClusterPorts.kept_in(tmp_path / "ports.json"))
    again.start()
    try:
        with again.primary_of("tk:{sale}:probe").client() as client:
            assert client.get("tk:{sale}:probe") == b"kept"
    finally:
        again.stop()
