"""The waiting socket, `/sales/{event_id}/queue/ws`: join, then a status message every push
interval until admitted, then the admission token.

It is served as plain ASGI by the app itself, before FastAPI's middleware and routing: a waiting
socket lives for minutes, and everything on its stack lives as long. Through FastAPI's WebSocket
route each socket held middleware and routing frames, dependency results, exit stacks and
Starlette's WebSocket object, about half of its memory (loadtest.bench_sockets); here it holds
two coroutine frames, its `Listener` and the server's own connection. A WebSocket route has no
OpenAPI schema, so none is lost.

The login token comes as `?access_token=` (browsers cannot set headers on a WebSocket). A
refused handshake is answered with the HTTP routes' status and reason (401, 404, 409, 429 with
`Retry-After`, 503) in place of the upgrade: a close before accept would reach the client as a
bare 403.
"""

import contextlib
import logging
import re

import orjson
from fastapi import FastAPI, HTTPException, status
from fastapi.responses import JSONResponse
from starlette.datastructures import QueryParams
from starlette.types import Receive, Scope, Send

from ticketing.common.cpu import name_current_task
from ticketing.common.errors import TemporaryError
from ticketing.common.http import log_refused_handshake
from ticketing.common.ratelimit import refusal
from ticketing.common.redis_client import REDIS_UNAVAILABLE
from ticketing.common.tokens import TokenRejected, Tokens
from ticketing.queue.commands import MAX_REFUSALS, POLICY_VIOLATION, Command, read_command
from ticketing.queue.deps import EVENT_ID_PATTERN, no_sale, place_refusal
from ticketing.queue.hub import Hub, Listener
from ticketing.queue.joins import Joins
from ticketing.queue.metrics import QUEUE_SOCKETS, TOKEN_REJECTIONS
from ticketing.queue.store import Throttled

log = logging.getLogger("ticketing.queue.socket")

ROUTE = "/sales/{event_id}/queue/ws"
_PATH = re.compile(r"/sales/([^/]+)/queue/ws")
_EVENT_ID = re.compile(EVENT_ID_PATTERN)


class WaitingRoomApp(FastAPI):
    """The queue service's app: FastAPI, except for the waiting socket, served here."""

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "websocket" and (match := _PATH.fullmatch(scope["path"])):
            name_current_task(f"WS {ROUTE}")
            joins: Joins = self.state.joins
            listener = await _admit(joins, self.state.tokens, match[1], scope, receive, send)
            if listener is not None:
                await _watch(joins.hub, match[1], listener, receive, send)
            return
        await super().__call__(scope, receive, send)


async def _admit(
    joins: Joins, tokens: Tokens, event_id: str, scope: Scope, receive: Receive, send: Send
) -> Listener | None:
    """The joined user's listener once the socket is accepted, or None once it is refused.

    A function of its own, so that what the handshake needed (query, token, claims) is freed
    when it returns rather than held for the socket's life."""
    if (await receive())["type"] != "websocket.connect":
        return None
    try:
        token = QueryParams(scope["query_string"]).get("access_token", "")
        user = await tokens.principal(token, remember=False)
    except TemporaryError as exc:
        await _deny(
            scope, receive, send, HTTPException(status.HTTP_503_SERVICE_UNAVAILABLE, exc.reason)
        )
        return None
    except TokenRejected as exc:
        TOKEN_REJECTIONS.labels(exc.reason).inc()
        await _deny(scope, receive, send, HTTPException(status.HTTP_401_UNAUTHORIZED, exc.reason))
        return None
    sale = await joins.sale(event_id) if _EVENT_ID.fullmatch(event_id) else None
    if sale is None:
        await _deny(scope, receive, send, no_sale(event_id))
        return None
    rule = joins.hub.settings.socket_rate
    place = await joins.join(*sale, user.user_id, rule)
    if isinstance(place, Throttled):
        await _deny(scope, receive, send, refusal(rule, place.wait_seconds))
        return None
    if (refused := place_refusal(place)) is not None:
        await _deny(scope, receive, send, refused)
        return None
    await send({"type": "websocket.accept"})
    # The server keeps this scope as long as the socket: what only the handshake needed (the
    # headers, the token in the query, the lifespan state) is let go here, some 2 KiB a socket
    # from a browser. uvicorn reads neither once the socket is accepted.
    scope["headers"] = []
    scope["query_string"] = b""
    scope["state"] = {}

    async def push(text: str) -> None:
        # A socket that closed meanwhile is ignored: its handler cleans up.
        with contextlib.suppress(OSError, RuntimeError):
            await send({"type": "websocket.send", "text": text})

    return Listener(user.user_id, place, push)


async def _deny(scope: Scope, receive: Receive, send: Send, refused: HTTPException) -> None:
    log_refused_handshake(scope, refused.status_code)
    await JSONResponse({"detail": refused.detail}, refused.status_code, refused.headers)(
        scope, receive, send
    )


async def _watch(hub: Hub, event_id: str, listener: Listener, receive: Receive, send: Send) -> None:
    """Until the socket closes: the hub pushes the listener its status; inbound frames are read
    as commands (`queue/commands.py`)."""
    QUEUE_SOCKETS.inc()
    refusals = 0
    try:
        await hub.connect(event_id, listener)
        while (message := await receive())["type"] != "websocket.disconnect":
            command = read_command(message)
            if command is Command.LEAVE:
                await hub.view(event_id).queue.mark_away(
                    [listener.user_id], hub.settings.queue_grace_seconds + 1
                )
                listener.done = True
                await _close(send, 1000, "")
                return
            refusals += 1
            code, reason = command.close_code, command.reason
            if code is None and refusals > MAX_REFUSALS:
                code, reason = (
                    POLICY_VIOLATION,
                    f"more than {MAX_REFUSALS} messages that are no command",
                )
            log.warning(
                "socket message refused: %s",
                reason,
                extra={"path": ROUTE, "close_code": code, "refusals": refusals},
            )
            if code is not None:
                await _close(send, code, reason)
                return
            await listener.send(orjson.dumps({"type": "error", "reason": reason}).decode())
    except REDIS_UNAVAILABLE:
        pass
    finally:
        QUEUE_SOCKETS.dec()
        await hub.disconnect(event_id, listener)


async def _close(send: Send, code: int, reason: str) -> None:
    with contextlib.suppress(OSError, RuntimeError):
        await send({"type": "websocket.close", "code": code, "reason": reason})
