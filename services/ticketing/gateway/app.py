"""The gateway's ASGI app: a reverse proxy that sends each request, HTTP or WebSocket, to the
service `routes.ROUTES` names, so a browser sees one origin (no CORS needed).

Locally it is the only front door; in a cluster the chart's Ingress sends it every path but the
waiting room's own (`/sales`, `/app`), so `routes.py` stays the one routing table.
"""

import asyncio
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import httpx
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from starlette.applications import Starlette
from starlette.background import BackgroundTask
from starlette.requests import HTTPConnection, Request
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.routing import Route, WebSocketRoute
from starlette.websockets import WebSocket
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed, InvalidHandshake, InvalidStatus
from websockets.http11 import Response as HandshakeResponse

from ticketing.gateway.routes import component_for
from ticketing.gateway.settings import GatewaySettings, get_settings

log = logging.getLogger("ticketing.gateway")

METHODS = ["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"]
# Headers about one hop, not the message (RFC 9110 7.6.1); the client and server set their own.
HOP_BY_HOP = frozenset(
    {
        "connection",
        "keep-alive",
        "proxy-authenticate",
        "proxy-authorization",
        "te",
        "trailer",
        "transfer-encoding",
        "upgrade",
    }
)
# A WebSocket close frame may not carry these (RFC 6455 7.4.1): "no code" and "dropped".
UNSENDABLE_CLOSE_CODES = frozenset({1005, 1006})


def create_app(settings: GatewaySettings | None = None) -> Starlette:
    settings = settings or get_settings()

    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        # No proxies from the environment: the services are reached directly.
        async with httpx.AsyncClient(
            timeout=settings.gateway_timeout_seconds, trust_env=False
        ) as client:
            app.state.client = client
            yield

    app = Starlette(
        lifespan=lifespan,
        routes=[
            # The gateway's own probes: a proxy is ready when it serves, whatever is behind it.
            Route("/healthz", _ready),
            Route("/readyz", _ready),
            # Its own process's metrics: forwarded, a scrape (or anyone on the Ingress) would
            # read the queue service's.
            Route("/metrics", _metrics),
            Route("/{path:path}", forward_http, methods=METHODS),
            WebSocketRoute("/{path:path}", forward_websocket),
        ],
    )
    app.state.settings = settings
    return app


async def _ready(_: Request) -> JSONResponse:
    return JSONResponse({"status": "ready", "checked": []})


async def _metrics(_: Request) -> Response:
    return Response(generate_latest(), media_type=CONTENT_TYPE_LATEST)


def _target(connection: HTTPConnection, websocket: bool = False) -> tuple[str, str]:
    """The component that serves this request and the URL to send it to, query included."""
    settings: GatewaySettings = connection.app.state.settings
    component = component_for(connection.url.path)
    base = settings.upstream(component)
    if websocket:
        base = "ws" + base.removeprefix("http")
    raw_path = connection.scope.get("raw_path") or connection.url.path.encode()
    query = connection.scope.get("query_string", b"")
    url = base + raw_path.decode("latin-1") + (f"?{query.decode('latin-1')}" if query else "")
    return component, url


def _forwarded(connection: HTTPConnection, *, keep_host: bool) -> list[tuple[str, str]]:
    """The request's own headers plus who asked, for the service's logs. An HTTP request keeps
    its Host, as behind an Ingress, so redirects a service builds point back here; a WebSocket
    client writes its own Host and handshake headers."""
    dropped = HOP_BY_HOP | {"content-length", "x-forwarded-for", "x-forwarded-proto"}
    if not keep_host:
        dropped |= {"host"}
    headers = [
        (name, value)
        for name, value in connection.headers.items()
        if name not in dropped and not name.startswith("sec-websocket")
    ]
    client = connection.client.host if connection.client else "unknown"
    return [
        *headers,
        ("x-forwarded-for", client),
        ("x-forwarded-proto", connection.url.scheme.replace("ws", "http")),
    ]


async def forward_http(request: Request) -> Response:
    component, url = _target(request)
    client: httpx.AsyncClient = request.app.state.client
    # API bodies are small JSON documents; answers (the seat map, the page) are streamed back.
    outgoing = client.build_request(
        request.method,
        url,
        headers=_forwarded(request, keep_host=True),
        content=await request.body(),
    )
    try:
        upstream = await client.send(outgoing, stream=True)
    except httpx.TimeoutException:
        log.warning("%s did not answer in time", component, extra={"url": url})
        return JSONResponse({"detail": f"{component} did not answer in time"}, status_code=504)
    except httpx.TransportError as exc:
        log.warning("%s is unavailable: %s", component, exc, extra={"url": url})
        return JSONResponse({"detail": f"{component} is unavailable"}, status_code=502)
    response = StreamingResponse(
        upstream.aiter_raw(),
        status_code=upstream.status_code,
        background=BackgroundTask(upstream.aclose),
    )
    response.raw_headers = [
        (name, value)
        for name, value in upstream.headers.raw
        if name.decode("latin-1").lower() not in HOP_BY_HOP
    ]
    return response


async def forward_websocket(websocket: WebSocket) -> None:
    component, url = _target(websocket, websocket=True)
    settings: GatewaySettings = websocket.app.state.settings
    try:
        upstream = await connect(
            url,
            additional_headers=_forwarded(websocket, keep_host=False),
            user_agent_header=None,
            subprotocols=websocket.scope.get("subprotocols") or None,
            open_timeout=settings.gateway_timeout_seconds,
            proxy=None,
        )
    except InvalidStatus as exc:
        # The service answered the handshake with a status (401, 404, 409, 429...): the browser
        # gets that answer, its body and headers (Retry-After), not a bare 403.
        log.info("%s refused the WebSocket: %s", component, exc, extra={"url": url})
        await websocket.send_denial_response(_denial(exc.response))
        return
    except (OSError, TimeoutError, InvalidHandshake) as exc:
        log.warning("%s is unavailable for a WebSocket: %r", component, exc, extra={"url": url})
        await websocket.send_denial_response(
            JSONResponse({"detail": f"{component} is unavailable"}, status_code=502)
        )
        return
    async with upstream:
        await websocket.accept(subprotocol=upstream.subprotocol)
        tasks = {
            asyncio.create_task(_browser_to_service(websocket, upstream)),
            asyncio.create_task(_service_to_browser(upstream, websocket)),
        }
        done, pending = await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
        for task in pending:
            task.cancel()
        # Either side hanging up ends both directions; how it hung up is not an error here.
        await asyncio.gather(*done, *pending, return_exceptions=True)


def _denial(refusal: HandshakeResponse) -> Response:
    headers = {
        name: value
        for name, value in refusal.headers.raw_items()
        if name.lower() not in HOP_BY_HOP | {"content-length"}
    }
    return Response(bytes(refusal.body or b""), status_code=refusal.status_code, headers=headers)


async def _browser_to_service(websocket: WebSocket, upstream: ClientConnection) -> None:
    while True:
        message = await websocket.receive()
        if message["type"] == "websocket.disconnect":
            await upstream.close(_sendable(message.get("code")))
            return
        text = message.get("text")
        await upstream.send(text if text is not None else message["bytes"])


async def _service_to_browser(upstream: ClientConnection, websocket: WebSocket) -> None:
    try:
        async for data in upstream:
            if isinstance(data, str):
                await websocket.send_text(data)
            else:
                await websocket.send_bytes(data)
    except ConnectionClosed:
        pass
    await websocket.close(_sendable(upstream.close_code), upstream.close_reason or "")


def _sendable(code: int | None) -> int:
    return 1000 if code is None or code in UNSENDABLE_CLOSE_CODES else code
