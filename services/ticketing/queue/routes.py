"""The waiting room's HTTP routes: join, poll, leave, and the fairness record (the waiting
socket is `queue/watch.py`)."""

import orjson
from fastapi import (
    APIRouter,
    HTTPException,
    Request,
    Response,
    status,
)
from fastapi.responses import PlainTextResponse
from starlette.convertors import Convertor, register_url_convertor

from ticketing.common.ratelimit import refusal
from ticketing.queue import fairness
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
    no_sale,
    place_refusal,
)
from ticketing.queue.hub import Status
from ticketing.queue.store import PlaceState, Throttled

router = APIRouter(tags=["queue"])


class _EventIdConvertor(Convertor[str]):
    """A path segment that is a well-formed sale id (`EVENT_ID_PATTERN`)."""

    regex = EVENT_ID_PATTERN.removeprefix("^").removesuffix("$")

    def convert(self, value: str) -> str:
        return value

    def to_string(self, value: str) -> str:
        return value


register_url_convertor("event_id", _EventIdConvertor())


async def _join(event_id: str, request: Request) -> Response:
    user = await caller(request)
    joins = joins_of(request)
    if (sale := await joins.sale(event_id)) is None:
        raise no_sale(event_id)
    view, config = sale
    rule = joins.hub.settings.join_rate
    place = await joins.join(view, config, user.user_id, rule)
    if isinstance(place, Throttled):
        raise refusal(rule, place.wait_seconds)
    if (refused := place_refusal(place)) is not None:
        raise refused
    await joins.hub.refresh(view, joins.hub.settings.queue_push_interval_seconds)
    _, message = await joins.hub.status(view, user.user_id, place)
    # Serialised here: FastAPI's validation and encoding of a returned dict cost more than orjson.
    return Response(orjson.dumps(message), media_type="application/json")


async def lean_join(request: Request) -> Response:
    """The join of a well-formed sale id, routed by Starlette alone: FastAPI's handling of a
    request (its parameters, dependencies and exit stacks) cost a quarter of a join's CPU in the
    app (loadtest.bench_join). The chassis middleware and exception handlers still apply, and
    count it under the documented route."""
    request.scope["route"] = _DOCUMENTED_JOIN
    return await _join(request.path_params["event_id"], request)


# Matched before the documented route below, which then only meets ids outside the pattern.
router.add_route(
    "/sales/{event_id:event_id}/queue", lean_join, methods=["POST"], include_in_schema=False
)


@router.post(
    "/sales/{event_id}/queue",
    summary="Join the line (again: same place)",
    response_model=Status,
    openapi_extra=BEARER_SECURITY,
)
async def join(event_id: EventId, request: Request) -> Response:
    """The join as OpenAPI describes it. Requests reach it only with a malformed sale id, which
    FastAPI refuses with its 422 before this runs; the rest are `lean_join`'s."""
    return await _join(event_id, request)


_DOCUMENTED_JOIN = router.routes[-1]


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
