"""The queue service over HTTP and WebSocket, against a real server and real Redis."""

import asyncio
import json
from collections.abc import AsyncIterator

import httpx
import pytest
import redis.asyncio as aioredis
import websockets
from ticketing.common.sale_config import write_sale_config
from ticketing.common.settings import CommonSettings
from ticketing.common.tokens import Tokens
from ticketing.queue.deps import EVENT_ID_PATTERN
from ticketing.queue.settings import QueueSettings
from ticketing.queue.store import SaleQueue
from ticketing_dev.ports import free_port

from .factories import make_queue_settings, publish_sale
from .server import login_token, running_queue_service


@pytest.fixture
async def service(settings: CommonSettings) -> AsyncIterator[tuple[str, QueueSettings]]:
    queue_settings = make_queue_settings(settings, queue_push_interval_seconds=0.25)
    async with running_queue_service(queue_settings) as base:
        yield base, queue_settings


def ws_url(base: str, settings: CommonSettings, user: str, event: str = "spring-concert") -> str:
    token = login_token(settings, user)
    return f"{base.replace('http', 'ws')}/sales/{event}/queue/ws?access_token={token}"


async def next_of_type(socket: websockets.ClientConnection, kind: str) -> dict[str, object]:
    async with asyncio.timeout(10):
        while True:
            message: dict[str, object] = json.loads(await socket.recv())
            if message["type"] == kind:
                return message


async def test_socket_watches_its_position_fall_until_admitted_with_a_valid_token(
    service: tuple[str, QueueSettings], queue: SaleQueue, redis_client: aioredis.Redis
) -> None:
    base, settings = service
    sale = await publish_sale(redis_client, queue, tps=4)
    ahead = [f"ahead-{n}" for n in range(6)]
    for user in ahead:
        await queue.join(user, sale)
    await queue.touch(ahead)
    async with websockets.connect(ws_url(base, settings, "carol")) as socket:
        positions = []
        async with asyncio.timeout(15):
            while True:
                message = json.loads(await socket.recv())
                if message["type"] == "admitted":
                    break
                if message["type"] == "position":
                    positions.append(message["position"])
                    await queue.touch(ahead)  # the people ahead are still there
    assert positions[0] >= 5
    assert positions == sorted(positions, reverse=True)
    assert len(set(positions)) >= 3
    tokens = Tokens.from_settings(settings)
    admission = await tokens.admission_for(message["token"], "carol", "spring-concert")
    assert admission.user_id == "carol"


async def test_operator_message_and_sold_out_reach_waiting_sockets(
    service: tuple[str, QueueSettings], queue: SaleQueue, redis_client: aioredis.Redis
) -> None:
    base, settings = service
    sale = await publish_sale(redis_client, queue, paused=True)
    async with websockets.connect(ws_url(base, settings, "dave")) as socket:
        first = await next_of_type(socket, "position")
        assert first["paused"] is True
        await write_sale_config(
            redis_client, queue.keys.prefix, sale.model_copy(update={"message": "Doors at 7"})
        )
        async with asyncio.timeout(3):
            while (await next_of_type(socket, "position"))["message"] != "Doors at 7":
                pass
        await redis_client.hset(queue.keys.seats, mapping={"A1": "sold:r1"})
        sold_out = await next_of_type(socket, "sold_out")
        assert "waiting list" in str(sold_out["notice"])


async def test_http_join_and_poll_keep_one_place(
    service: tuple[str, QueueSettings], queue: SaleQueue, redis_client: aioredis.Redis
) -> None:
    base, settings = service
    await publish_sale(redis_client, queue, paused=True)
    headers = {"Authorization": f"Bearer {login_token(settings, 'erin')}"}
    async with httpx.AsyncClient(base_url=base, headers=headers) as client:
        joined = [(await client.post("/sales/spring-concert/queue")).json() for _ in range(3)]
        polled = (await client.get("/sales/spring-concert/queue")).json()
        assert {j["ticket"] for j in joined} == {polled["ticket"]}
        assert polled["position"] == 1
        assert (await client.delete("/sales/spring-concert/queue")).status_code == 204
        unknown = await client.post("/sales/no-such-sale/queue")
        assert unknown.status_code == 404
        anonymous = await client.post("/sales/spring-concert/queue", headers={"Authorization": ""})
        assert anonymous.status_code == 401
        commitment = (await client.get("/sales/spring-concert/fairness")).json()
        assert len(commitment["commitment"]) == 64
        metrics = (await client.get("/metrics")).text
        assert "ticketing_queue_token_rejections_total" in metrics
        assert "ticketing_queue_waiting" in metrics


async def test_the_join_refuses_a_malformed_sale_id_and_is_counted_and_described_as_one_route(
    service: tuple[str, QueueSettings], queue: SaleQueue, redis_client: aioredis.Redis
) -> None:
    base, settings = service
    await publish_sale(redis_client, queue)
    headers = {"Authorization": f"Bearer {login_token(settings, 'gina')}"}
    async with httpx.AsyncClient(base_url=base, headers=headers) as client:
        assert (await client.post("/sales/spring-concert/queue")).status_code == 200
        malformed = await client.post("/sales/%7Bspring%7D/queue")
        metrics = (await client.get("/metrics")).text
        schema = (await client.get("/openapi.json")).json()
    assert malformed.status_code == 422
    assert malformed.json()["detail"][0]["loc"] == ["path", "event_id"]
    assert await redis_client.zcard(queue.keys.waiting) == 1
    joined = 'method="POST",route="/sales/{event_id}/queue",service="queue",status="%d"'
    assert joined % 200 in metrics
    assert joined % 422 in metrics
    described = schema["paths"]["/sales/{event_id}/queue"]["post"]
    assert described["security"] == [{"HTTPBearer": []}]
    assert described["parameters"][0]["schema"]["pattern"] == EVENT_ID_PATTERN


async def test_a_join_when_no_node_of_the_redis_cluster_answers_is_a_503_and_the_loops_live_on(
    settings: CommonSettings,
) -> None:
    unreachable = make_queue_settings(
        settings, redis_cluster=True, redis_url=f"redis://127.0.0.1:{free_port()}/0"
    )
    headers = {"Authorization": f"Bearer {login_token(unreachable, 'hana')}"}
    async with (
        running_queue_service(unreachable) as base,
        httpx.AsyncClient(base_url=base, headers=headers) as client,
    ):
        await asyncio.sleep(5 * unreachable.queue_push_interval_seconds)
        joined = await client.post("/sales/spring-concert/queue")
        readiness = (await client.get("/readyz")).json()
    assert joined.status_code == 503
    assert joined.json()["detail"] == "redis unavailable"
    # Not ready for want of Redis, but the hub and the admission worker still run.
    assert set(readiness["failed"]) == {"redis"}, readiness


async def test_a_session_that_ran_out_before_the_admission_round_is_not_reported_admitted(
    settings: CommonSettings, queue: SaleQueue, redis_client: aioredis.Redis
) -> None:
    # No admission worker, so nothing removes the ended session from the active set.
    quiet = make_queue_settings(settings, queue_run_admission=False)
    await publish_sale(redis_client, queue)
    await redis_client.zadd(queue.keys.active, {"frank": 1.0})
    headers = {"Authorization": f"Bearer {login_token(quiet, 'frank')}"}
    async with (
        running_queue_service(quiet) as base,
        httpx.AsyncClient(base_url=base, headers=headers) as client,
    ):
        polled = await client.get("/sales/spring-concert/queue")
    # Not "admitted" without a token to hold with: the admission and its place are spent.
    assert polled.json()["type"] == "none"
