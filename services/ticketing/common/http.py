"""The service chassis: one way to build every HTTP service's FastAPI app.

`create_app` gives a service its lifespan (the service's long-lived clients, opened on entry and
closed in `finally`), `/healthz`, `/readyz` over the service's real dependencies, Prometheus
`/metrics`, request ids in responses and logs, one policy for request bodies (size, and numbers
JSON cannot carry), and a generic 500 that never shows a stack trace.
"""

import asyncio
import json
import logging
import math
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Mapping
from contextlib import AbstractAsyncContextManager, asynccontextmanager

import redis.exceptions
import sqlalchemy.exc
from fastapi import APIRouter, FastAPI, HTTPException, Request, Response
from fastapi.responses import JSONResponse
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from ticketing.common.cpu import name_current_task, start_accounting
from ticketing.common.errors import TemporaryError
from ticketing.common.liveness import Heartbeats
from ticketing.common.observability import observe_request, request_id_var
from ticketing.common.settings import CommonSettings
from ticketing.common.tokens import Tokens

REQUEST_ID_HEADER = "X-Request-ID"
PROBE_PATHS = frozenset({"/healthz", "/readyz", "/metrics"})
READINESS_TIMEOUT_SECONDS = 2.0

# A readiness check raises (or times out) when its dependency cannot serve the service.
ReadinessCheck = Callable[[], Awaitable[object]]
# A service's lifespan opens its clients, puts them on `app.state`, and yields its readiness checks.
ServiceLifespan = Callable[[FastAPI], AbstractAsyncContextManager[Mapping[str, ReadinessCheck]]]

log = logging.getLogger("ticketing.http")

# A backing server that is restarting, unreachable or out of pooled connections: the request may
# succeed if retried, so the client gets a 503 naming the dependency rather than a 500.
_UNAVAILABLE_DEPENDENCIES: Mapping[type[Exception], str] = {
    sqlalchemy.exc.OperationalError: "database unavailable",
    sqlalchemy.exc.InterfaceError: "database unavailable",
    sqlalchemy.exc.TimeoutError: "database busy",
    redis.exceptions.ConnectionError: "redis unavailable",
    redis.exceptions.TimeoutError: "redis unavailable",
    # A cluster client that reaches no node, or whose redirections ran out in a failover.
    redis.exceptions.RedisClusterException: "redis unavailable",
}


def create_app(
    *,
    service: str,
    settings: CommonSettings,
    lifespan: ServiceLifespan,
    routers: Iterable[APIRouter],
    description: str = "",
    app_class: type[FastAPI] = FastAPI,
) -> FastAPI:
    """A service's app; `settings` is reachable from handlers as `request.app.state.settings`,
    the token verifiers as `request.app.state.tokens`. `app_class` is FastAPI or a subclass that
    serves some scopes itself (the queue's waiting socket)."""

    @asynccontextmanager
    async def chassis_lifespan(app: FastAPI) -> AsyncIterator[None]:
        if settings.cpu_accounting:
            start_accounting()
        try:
            async with lifespan(app) as checks:
                app.state.readiness = dict(checks)
                log.info("service started", extra={"dependencies": sorted(checks)})
                try:
                    yield
                finally:
                    log.info("service stopping")
        finally:
            await app.state.tokens.aclose()

    app = app_class(
        title=f"ticketing {service}", description=description, lifespan=chassis_lifespan
    )
    app.state.settings = settings
    app.state.service = service
    app.state.tokens = Tokens.from_settings(settings)
    app.state.heartbeats = Heartbeats()
    app.state.readiness = {}
    # Added first, so it runs inside the request context and its 413s and 422s are logged with an
    # id.
    app.add_middleware(RequestBodyMiddleware, limit=settings.max_request_bytes)
    app.add_middleware(RequestContextMiddleware, service=service)
    app.add_middleware(HandshakeRefusalMiddleware)
    app.add_exception_handler(TemporaryError, _temporarily_unavailable)
    for error_class in _UNAVAILABLE_DEPENDENCIES:
        app.add_exception_handler(error_class, _temporarily_unavailable)
    app.include_router(_probes)
    for router in routers:
        app.include_router(router)
    return app


async def _temporarily_unavailable(request: Request, error: Exception) -> JSONResponse:
    """A dependency is down: the client may retry; the reason names what, never how."""
    reason = (
        error.reason
        if isinstance(error, TemporaryError)
        else next(
            (why for kind, why in _UNAVAILABLE_DEPENDENCIES.items() if isinstance(error, kind)),
            "temporarily unavailable",
        )
    )
    log.warning("temporarily unavailable: %s", reason, exc_info=error)
    return JSONResponse({"detail": reason}, status_code=503, headers={"Retry-After": "1"})


_probes = APIRouter(tags=["probes"])


@_probes.get(
    "/healthz", summary="The process and every background loop are alive", response_model=None
)
async def healthz(request: Request) -> JSONResponse:
    heartbeats: Heartbeats = request.app.state.heartbeats
    if late := heartbeats.late():
        log.error("a background loop is stuck", extra={"late": late})
        return JSONResponse({"status": "stuck", "late": late}, status_code=503)
    return JSONResponse({"status": "ok"})


@_probes.get("/readyz", summary="Every dependency answers a real request", response_model=None)
async def readyz(request: Request) -> JSONResponse:
    checks: dict[str, ReadinessCheck] = request.app.state.readiness
    names = list(checks)
    results = await asyncio.gather(
        *(asyncio.wait_for(checks[name](), READINESS_TIMEOUT_SECONDS) for name in names),
        return_exceptions=True,
    )
    failed = {
        name: _describe(result)
        for name, result in zip(names, results, strict=True)
        if isinstance(result, BaseException)
    }
    if failed:
        log.warning("not ready", extra={"failed": failed})
        return JSONResponse({"status": "unavailable", "failed": failed}, status_code=503)
    return JSONResponse({"status": "ready", "checked": names})


def _describe(error: BaseException) -> str:
    if isinstance(error, TimeoutError):
        return f"no answer within {READINESS_TIMEOUT_SECONDS:g}s"
    first_line = next(iter(str(error).splitlines()), "")
    return f"{type(error).__name__}: {first_line}"[:200]


@_probes.get("/metrics", summary="Prometheus metrics of this process")
async def metrics() -> Response:
    return Response(generate_latest(), media_type=CONTENT_TYPE_LATEST)


class RequestContextMiddleware:
    """Request id in and out, one access log line and metrics per request, generic 500s.

    Pure ASGI rather than BaseHTTPMiddleware so the request id context variable is visible to
    the handler and to every log line written while it runs.
    """

    def __init__(self, app: ASGIApp, service: str) -> None:
        self.app = app
        self.service = service

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "websocket":
            await self.app(scope, receive, _naming_task(scope, send))
            return
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        request_id = _incoming_request_id(scope) or uuid.uuid4().hex
        token = request_id_var.set(request_id)
        started = time.perf_counter()
        status = 500
        response_started = False

        async def send_with_id(message: Message) -> None:
            nonlocal status, response_started
            if message["type"] == "http.response.start":
                status = message["status"]
                response_started = True
                name_current_task(f"{scope['method']} {_route_template(scope)}")
                message["headers"] = [
                    *message.get("headers", []),
                    (REQUEST_ID_HEADER.lower().encode(), request_id.encode()),
                ]
            await send(message)

        try:
            await self.app(scope, receive, send_with_id)
        except Exception:
            log.exception("unhandled error")
            if not response_started:
                await JSONResponse(
                    {"detail": "internal error", "request_id": request_id}, status_code=500
                )(scope, receive, send_with_id)
        finally:
            route = _route_template(scope)
            observe_request(self.service, scope["method"], route, status, started)
            log.log(
                logging.DEBUG if scope["path"] in PROBE_PATHS else logging.INFO,
                "%s %s %d",
                scope["method"],
                scope["path"],
                status,
                extra={
                    "route": route,
                    "status": status,
                    "ms": round((time.perf_counter() - started) * 1000, 2),
                },
            )
            request_id_var.reset(token)


class RequestBodyMiddleware:
    """The one policy for request bodies, the same on every service.

    A body over `limit` bytes is refused with 413, whether declared or streamed. A JSON body (as
    FastAPI reads one: a JSON media type, or none) is read whole and decoded once here: a number
    that is not finite (`NaN`, `Infinity`, or `1e400`, which parses as infinity) or an integer
    outside 64 bits is refused with 422 naming the field, in FastAPI's shape. Past this no
    handler, validator or error message meets such a number, so none can fail rendering it.
    """

    def __init__(self, app: ASGIApp, limit: int) -> None:
        self.app = app
        self.limit = limit

    @property
    def _reason(self) -> str:
        return f"request body is larger than {self.limit} bytes"

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = dict(scope["headers"])
        declared = headers.get(b"content-length")
        if declared is not None and declared.isdigit() and int(declared) > self.limit:
            await JSONResponse({"detail": self._reason}, status_code=413)(scope, receive, send)
            return
        if is_json(headers.get(b"content-type")):
            await self._json(scope, receive, send)
            return
        received = 0

        async def counting_receive() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.limit:
                    # An HTTPException, because FastAPI turns any other error while it reads a
                    # body into a 400; this one reaches the client as the 413 it is.
                    raise HTTPException(413, self._reason)
            return message

        await self.app(scope, counting_receive, send)

    async def _json(self, scope: Scope, receive: Receive, send: Send) -> None:
        chunks: list[bytes] = []
        size = 0
        while True:
            message = await receive()
            if message["type"] != "http.request":
                return  # the client went away before sending its body
            chunk: bytes = message.get("body", b"")
            size += len(chunk)
            if size > self.limit:
                await JSONResponse({"detail": self._reason}, status_code=413)(scope, receive, send)
                return
            chunks.append(chunk)
            if not message.get("more_body", False):
                break
        body = b"".join(chunks)
        if refused := _refused_number(body):
            log.warning("request refused: %s", refused["msg"], extra={"loc": refused["loc"]})
            await JSONResponse({"detail": [refused]}, status_code=422)(scope, receive, send)
            return
        await self.app(scope, replayed(body, receive), send)


def replayed(body: bytes, receive: Receive) -> Receive:
    """`receive` giving the body already read first, whole, then what `receive` gives."""
    given = False

    async def replay() -> Message:
        nonlocal given
        if given:
            return await receive()
        given = True
        return {"type": "http.request", "body": body, "more_body": False}

    return replay


# The widest integer any store of the platform takes (MariaDB's BIGINT, Redis's integers).
_INT_RANGE = range(-(2**63), 2**63)


def is_json(content_type: bytes | None) -> bool:
    """Whether FastAPI would decode this body as JSON (it does so when no type is given)."""
    if content_type is None:
        return True
    media = content_type.split(b";", 1)[0].strip().lower()
    return media == b"application/json" or media.endswith(b"+json")


def _refused_number(body: bytes) -> dict[str, object] | None:
    """The first number the JSON body may not carry, as a validation error; None when it has
    none, or is no JSON at all (FastAPI then answers its own 422)."""
    if not body:
        return None
    try:
        return _find_bad_number(json.loads(body), ("body",))
    except (json.JSONDecodeError, UnicodeDecodeError):
        return None
    except ValueError:
        # An integer literal longer than Python converts (4,300 digits): out of range too.
        return _number_error(("body",), "an integer too long to convert")
    except RecursionError:
        return {
            "type": "json_invalid",
            "loc": ["body"],
            "msg": "JSON nested too deeply",
            "input": None,
        }


def _find_bad_number(value: object, loc: tuple[str | int, ...]) -> dict[str, object] | None:
    if isinstance(value, float) and not math.isfinite(value):
        return _number_error(loc, str(value))
    if isinstance(value, int) and not isinstance(value, bool) and value not in _INT_RANGE:
        return _number_error(loc, "an integer outside 64 bits")
    items: Iterable[tuple[str | int, object]] = ()
    if isinstance(value, dict):
        items = value.items()
    elif isinstance(value, list):
        items = enumerate(value)
    for key, item in items:
        if found := _find_bad_number(item, (*loc, key)):
            return found
    return None


def _number_error(loc: tuple[str | int, ...], found: str) -> dict[str, object]:
    return {
        "type": "finite_number",
        "loc": list(loc),
        "msg": "Input should be a finite number within 64 bits",
        "input": found,
    }


class HandshakeRefusalMiddleware:
    """Logs a WebSocket handshake the app refused with an HTTP response (a 401, 404, 409 or 429
    in place of the upgrade), once, at INFO."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "websocket":
            await self.app(scope, receive, send)
            return

        async def watching_send(message: Message) -> None:
            if message["type"] == "websocket.http.response.start":
                log_refused_handshake(scope, message["status"])
            await send(message)

        await self.app(scope, receive, watching_send)


def log_refused_handshake(scope: Scope, status: int) -> None:
    log.info(
        "websocket handshake refused with %d",
        status,
        extra={"path": scope["path"], "status": status},
    )


def _incoming_request_id(scope: Scope) -> str | None:
    for name, value in scope["headers"]:
        if name == b"x-request-id":
            text: str = value.decode("latin-1").strip()
            # A caller's id is kept only if it is short and printable, so logs stay clean.
            if 0 < len(text) <= 128 and text.isprintable():
                return text
    return None


def _naming_task(scope: Scope, send: Send) -> Send:
    """A WebSocket's send that charges the socket's task to its route on the first message
    (the accept or the refusal), when the route is known."""
    named = False

    async def send_naming(message: Message) -> None:
        nonlocal named
        if not named:
            named = True
            name_current_task(f"WS {_route_template(scope)}")
        await send(message)

    return send_naming


def _route_template(scope: Scope) -> str:
    """The matched route's path template, so metrics have one series per route, not per id."""
    route = scope.get("route")
    path = getattr(route, "path", None)
    return path if isinstance(path, str) else "unmatched"
