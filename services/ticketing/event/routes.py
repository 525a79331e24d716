"""Create and read events. Writes are for admins; reads are public."""

from fastapi import APIRouter, HTTPException, Query, Response, status
from sqlalchemy.exc import IntegrityError
from sqlmodel import col, select

from ticketing.common.ids import Slug, new_slug
from ticketing.event.deps import AdminUser, SaleManager, SessionDep
from ticketing.event.models import Event, EventBase, EventCreate, EventPublic

router = APIRouter(tags=["events"])


@router.post("/events", status_code=status.HTTP_201_CREATED, summary="Create an event")
async def create_event(body: EventCreate, session: SessionDep, _: AdminUser) -> EventPublic:
    event = Event.model_validate(body, update={"id": body.id or new_slug(body.title)})
    session.add(event)
    try:
        await session.commit()
    except IntegrityError as exc:
        raise HTTPException(status.HTTP_409_CONFLICT, "an event with this id exists") from exc
    return EventPublic.model_validate(event)


@router.put(
    "/events/{event_id}",
    summary="Create the event, or update it to match (idempotent)",
    responses={201: {"description": "created"}, 200: {"description": "existed; now matches"}},
)
async def put_event(
    event_id: Slug,
    body: EventBase,
    session: SessionDep,
    response: Response,
    _: SaleManager,
) -> EventPublic:
    event = await session.get(Event, event_id)
    if event is None:
        event = Event.model_validate(body, update={"id": event_id})
        response.status_code = status.HTTP_201_CREATED
    elif event.venue_id != body.venue_id:
        # The seat inventory of a sale is loaded from its venue; moving it would strand holds.
        raise HTTPException(status.HTTP_409_CONFLICT, "an event's venue cannot change")
    else:
        event.sqlmodel_update(body.model_dump())
    session.add(event)
    try:
        await session.commit()
    except IntegrityError as exc:
        raise HTTPException(status.HTTP_409_CONFLICT, "the event was created concurrently") from exc
    return EventPublic.model_validate(event)


@router.get("/events", summary="Events in order of their sale's opening")
async def list_events(
    session: SessionDep,
    limit: int = Query(default=50, ge=1, le=200),
    # Bounded: MariaDB refuses an OFFSET past 2**64 - 1 with a syntax error.
    offset: int = Query(default=0, ge=0, le=1_000_000),
) -> list[EventPublic]:
    query = select(Event).order_by(col(Event.opens_at), col(Event.id)).offset(offset).limit(limit)
    return [EventPublic.model_validate(event) for event in await session.exec(query)]


@router.get("/events/{event_id}", summary="One event")
async def get_event(event_id: Slug, session: SessionDep) -> EventPublic:
    event = await session.get(Event, event_id)
    if event is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, "event not found")
    return EventPublic.model_validate(event)
