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

from ticketing.common.ratelimit import refusal
from ticketing.queue import fairness
from ticketing.queue.deps import (
    BEARER_SECURITY,
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
