"""The gateway in front of a real upstream (uvicorn on a free port): what a client sends
arrives unchanged, answers come back, WebSockets pass both ways, and a service that is down
gets a clear 502."""

import json
from collections.abc import AsyncIterator

import httpx
import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route, WebSocketRoute
from starlette.websockets import WebSocket
from ticketing.gateway.app import create_app
from ticketing.gateway.routes import COMPONENTS
from ticketing.gateway.settings import GatewaySettings
from ticketing_dev.ports import free_port
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed, InvalidStatus

from tests.serving import serving


async def echo(request: Request) -> Response:
    return JSONResponse(
        {
            "method": request.method,
            "path": request.url.path,
            "query": request.url.query,
            "body": (await request.body()).decode(),
            "host": request.headers["host"],
            "forwarded_for": request.headers.get("x-forwarded-for"),
        },
        headers={"Set-Cookie": "a=1", "X-Upstream": "yes"},
    )


async def echo_socket(websocket: WebSocket) -> None:
    await websocket.accept()
    while (text := await websocket.receive_text()) != "bye":
        await websocket.send_text(f"echo: {text}")
    await websocket.close(4000, "you said bye")


# How the queue refuses a handshake, by the reason in the path: status, detail, headers.
REFUSALS = {
    "login": (401, "token expired", {"WWW-Authenticate": "Bearer"}),
    "unknown-sale": (404, "no sale 'x' is configured", {}),
    "sold-out": (409, "the sale is sold out", {}),
    "throttled": (429, "too many joins: retry in 2 s", {"Retry-After": "2"}),
}


async def refuse_socket(websocket: WebSocket) -> None:
    status, detail, headers = REFUSALS[websocket.path_params["why"]]
    await websocket.send_denial_response(JSONResponse({"detail": detail}, status, headers))


UPSTREAM = Starlette(
    routes=[
        WebSocketRoute("/sales/refused-{why}/queue/ws", refuse_socket),
        WebSocketRoute("/{path:path}", echo_socket),
        Route("/{path:path}", echo, methods=["GET", "POST", "PUT", "DELETE"]),
    ]
)


def gateway_settings(url: str) -> GatewaySettings:
    """Every service at `url`: the gateway needs no Redis, database or broker."""
    return GatewaySettings.model_validate({f"gateway_{name}_url": url for name in COMPONENTS})


@pytest.fixture
async def gateway() -> AsyncIterator[str]:
    async with (
        serving(UPSTREAM) as upstream,
        serving(create_app(gateway_settings(upstream))) as url,
    ):
        yield url


async def test_request_arrives_with_its_method_path_query_body_and_host(gateway: str) -> None:
    async with httpx.AsyncClient(base_url=gateway, trust_env=False) as client:
        response = await client.put("/events/spring%20fair?x=1&y=a%2Fb", content=b'{"a": 1}')
    assert response.status_code == 200
    assert response.json() == {
        "method": "PUT",
        "path": "/events/spring fair",
        "query": "x=1&y=a%2Fb",
        "body": '{"a": 1}',
        "host": gateway.removeprefix("http://"),
        "forwarded_for": "127.0.0.1",
    }
    assert response.headers["x-upstream"] == "yes"
    assert response.headers["set-cookie"] == "a=1"


async def test_metrics_are_the_gateways_own_not_a_services(gateway: str) -> None:
    async with httpx.AsyncClient(base_url=gateway, trust_env=False) as client:
        response = await client.get("/metrics")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain")
    assert "x-upstream" not in response.headers
    assert "process_cpu_seconds_total" in response.text


async def test_service_that_is_down_gets_a_502_naming_it() -> None:
    closed = f"http://127.0.0.1:{free_port()}"
    async with (
        serving(create_app(gateway_settings(closed))) as gateway,
        httpx.AsyncClient(base_url=gateway, trust_env=False) as client,
    ):
        response = await client.get("/events/spring/seats")
    assert response.status_code == 502
    assert response.json() == {"detail": "seat is unavailable"}


async def test_websocket_messages_pass_both_ways_and_the_close_code_comes_back(
    gateway: str,
) -> None:
    url = "ws" + gateway.removeprefix("http") + "/sales/spring/queue/ws?access_token=t"
    async with connect(url, proxy=None) as socket:
        await socket.send("hello")
        assert await socket.recv() == "echo: hello"
        await socket.send("bye")
        with pytest.raises(ConnectionClosed):
            await socket.recv()
    assert (socket.close_code, socket.close_reason) == (4000, "you said bye")


@pytest.mark.parametrize("why", list(REFUSALS))
async def test_websocket_the_service_refuses_gets_the_services_status_and_reason(
    gateway: str, why: str
) -> None:
    url = "ws" + gateway.removeprefix("http") + f"/sales/refused-{why}/queue/ws"
    with pytest.raises(InvalidStatus) as refused:
        async with connect(url, proxy=None):
            pass
    response = refused.value.response
    status, detail, headers = REFUSALS[why]
    assert response.status_code == status
    assert json.loads(response.body or b"") == {"detail": detail}
    for name, value in headers.items():
        assert response.headers[name] == value


async def test_websocket_to_a_service_that_is_down_gets_a_502_naming_it() -> None:
    closed = f"http://127.0.0.1:{free_port()}"
    async with serving(create_app(gateway_settings(closed))) as gateway:
        with pytest.raises(InvalidStatus) as refused:
            async with connect(
                "ws" + gateway.removeprefix("http") + "/sales/s/queue/ws", proxy=None
            ):
                pass
    assert refused.value.response.status_code == 502
    assert json.loads(refused.value.response.body or b"") == {"detail": "queue is unavailable"}
