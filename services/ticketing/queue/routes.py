"""The waiting room's HTTP and WebSocket routes: join, watch, poll, leave, and the fairness record."""

import contextlib
import logging
import re
from collections.abc import Awaitable, Callable

import orjson
from fastapi import (
    APIRouter,
    HTTPException,
    Request,
    Response,
    WebSocket,
    WebSocketDisconnect,
    status,
)
from fastapi.responses import JSONResponse, PlainTextResponse
from redis.exceptions import RedisError

from ticketing.common.errors import TemporaryError
from ticketing.common.ratelimit import refusal
from ticketing.common.tokens import TokenRejected, Tokens
from ticketing.queue import fairness
from ticketing.queue.commands import (
    MAX_REFUSALS,
    POLICY_VIOLATION,
    Command,
    Refusal,
    frame_of,
    read_command,
)
from ticketing.queue.deps import (
    BEARER_SECURITY,
    EVENT_ID_PATTERN,
    EventId,
    HubDep,
    QueueUser,
    SaleDep,
    SettingsDep,
    caller,
    joins_of,
)
from ticketing.queue.hub import Listener, Status
from ticketing.queue.metrics import QUEUE_SOCKETS, TOKEN_REJECTIONS
from ticketing.queue.store import Place, PlaceState, Throttled

router = APIRouter(tags=["queue"])
log = logging.getLogger("ticketing.queue.socket")
_EVENT_ID = re.compile(EVENT_ID_PATTERN)

_REFUSALS = {
    PlaceState.NOT_OPEN: "the waiting room is not open yet",
    PlaceState.CLOSED: "the sale has closed",
}


def _refuse(place: Place) -> None:
    if place.state in _REFUSALS:
        raise HTTPException(status.HTTP_409_CONFLICT, _REFUSALS[place.state])


def _no_sale(event_id: str) -> HTTPException:
    return HTTPException(status.HTTP_404_NOT_FOUND, f"no sale {event_id!r} is configured")


async def _deny(websocket: WebSocket, refused: HTTPException) -> None:
    """Answer the handshake with the HTTP route's status and reason instead of the upgrade (a
    close before accept would reach the client as a bare 403)."""
    await websocket.send_denial_response(
        JSONResponse({"detail": refused.detail}, refused.status_code, refused.headers)
    )


@router.post(
    "/sales/{event_id}/queue",
    summary="Join the line (again: same place)",
    response_model=Status,
    openapi_extra=BEARER_SECURITY,
)
async def join(event_id: EventId, request: Request) -> Response:
    user = await caller(request)
    joins = joins_of(request)
    if (sale := await joins.sale(event_id)) is None:
        raise _no_sale(event_id)
    view, config = sale
    rule = joins.hub.settings.join_rate
    place = await joins.join(view, config, user.user_id, rule)
    if isinstance(place, Throttled):
        raise refusal(rule, place.wait_seconds)
    _refuse(place)
    await joins.hub.refresh(view, joins.hub.settings.queue_push_interval_seconds)
    _, message = await joins.hub.status(view, user.user_id, place)
    # Serialised here: FastAPI's validation and encoding of a returned dict cost more than orjson.
    return Response(orjson.dumps(message), media_type="application/json")


@router.get("/sales/{event_id}/queue", summary="Where the caller stands (poll every 1-2 s)")
async def poll(event_id: EventId, user: QueueUser, sale: SaleDep, hub: HubDep) -> Status:
    view = hub.view(event_id)
    place = await view.queue.join(user.user_id, sale, create=False)
    if place.state is PlaceState.NONE:
        raise HTTPException(status.HTTP_404_NOT_FOUND, "you are not in this sale's line")
    await hub.refresh(view, hub.settings.queue_push_interval_seconds)
    return (await hub.status(view, user.user_id, place))[1]


@router.delete(
    "/sales/{event_id}/queue", status_code=status.HTTP_204_NO_CONTENT, summary="Leave the line"
)
async def leave(event_id: EventId, user: QueueUser, hub: HubDep, settings: SettingsDep) -> None:
    # Backdated beyond the grace period: the next sweep removes the place.
    await hub.view(event_id).queue.mark_away([user.user_id], settings.queue_grace_seconds + 1)


@router.get("/sales/{event_id}/fairness", summary="The pre-queue's seed commitment, and the seed")
async def fairness_record(event_id: EventId, _: SaleDep, hub: HubDep) -> Status:
    record = await hub.view(event_id).queue.fairness_record()
    return {
        "commitment": record.commitment,
        "seed": record.seed,
        "prequeue_size": record.prequeue_size,
        "rule": fairness.RULE,
    }


@router.get(
    "/sales/{event_id}/fairness/order",
    response_class=PlainTextResponse,
    summary="The pre-queue's users in the order they are served, one a line",
)
async def fairness_order(event_id: EventId, _: SaleDep, hub: HubDep) -> str:
    record = await hub.view(event_id).queue.fairness_record()
    if record.seed is None:
        raise HTTPException(
            status.HTTP_409_CONFLICT, "the pre-queue is ordered when the sale opens"
        )
    return "".join(f"{user}\n" for user in record.order)


@router.websocket("/sales/{event_id}/queue/ws")
async def watch(websocket: WebSocket) -> None:
    """Join and watch: a position message every push interval until admitted, then the token.

    The login token comes as `?access_token=` (browsers cannot set headers here). The path and
    query are read directly, not declared as parameters: FastAPI's resolution of them cost about
    4 % of a socket's join (bench_join; a WebSocket route has no OpenAPI schema to keep)."""
    joins = joins_of(websocket)
    hub, settings = joins.hub, joins.hub.settings
    tokens: Tokens = websocket.app.state.tokens
    try:
        user = await tokens.principal(websocket.query_params.get("access_token", ""))
    except TemporaryError as exc:
        await _deny(websocket, HTTPException(status.HTTP_503_SERVICE_UNAVAILABLE, exc.reason))
        return
    except TokenRejected as exc:
        TOKEN_REJECTIONS.labels(exc.reason).inc()
        await _deny(websocket, HTTPException(status.HTTP_401_UNAUTHORIZED, exc.reason))
        return
    event_id: str = websocket.path_params["event_id"]
    sale = await joins.sale(event_id) if _EVENT_ID.fullmatch(event_id) else None
    if sale is None:
        await _deny(websocket, _no_sale(event_id))
        return
    place = await joins.join(*sale, user.user_id, settings.socket_rate)
    if isinstance(place, Throttled):
        await _deny(websocket, refusal(settings.socket_rate, place.wait_seconds))
        return
    if place.state in _REFUSALS:
        await _deny(websocket, HTTPException(status.HTTP_409_CONFLICT, _REFUSALS[place.state]))
        return
    await websocket.accept()

    async def send(text: str) -> None:
        with contextlib.suppress(WebSocketDisconnect, RuntimeError):
            await websocket.send_text(text)

    listener = Listener(user.user_id, place, send)
    QUEUE_SOCKETS.inc()
    refusals = 0
    try:
        await hub.connect(event_id, listener)
        while True:
            command = read_command(frame_of(await websocket.receive()))
            if command is Command.LEAVE:
                await hub.view(event_id).queue.mark_away(
                    [user.user_id], settings.queue_grace_seconds + 1
                )
                listener.done = True
                await websocket.close()
                return
            refusals += 1
            if not await _refuse_frame(websocket, command, refusals, send):
                return
    except (WebSocketDisconnect, RedisError):
        pass
    finally:
        QUEUE_SOCKETS.dec()
        await hub.disconnect(event_id, listener)


async def _refuse_frame(
    websocket: WebSocket, refused: Refusal, refusals: int, send: Callable[[str], Awaitable[None]]
) -> bool:
    """Answer a frame that is no command: an error message, True while the socket stays open;
    a close frame with its code and reason, False, once it must close."""
    code = refused.close_code
    reason = refused.reason
    if code is None and refusals > MAX_REFUSALS:
        code, reason = POLICY_VIOLATION, f"more than {MAX_REFUSALS} messages that are no command"
    log.warning(
        "socket message refused: %s",
        reason,
        extra={"path": websocket.url.path, "close_code": code, "refusals": refusals},
    )
    if code is None:
        await send(orjson.dumps({"type": "error", "reason": reason}).decode())
        return True
    with contextlib.suppress(WebSocketDisconnect, RuntimeError):
        await websocket.close(code, reason)
    return False
