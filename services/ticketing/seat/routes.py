"""Venues and their seat maps; a sale's seat inventory and its live status."""

from typing import Any

from fastapi import APIRouter, HTTPException, Request, Response, status
from sqlalchemy.dialects.mysql import insert
from sqlalchemy.exc import IntegrityError

from ticketing.common.ids import Slug, new_slug
from ticketing.common.redis_keys import SaleKeys
from ticketing.common.sqltypes import utcnow
from ticketing.seat.deps import (
    AdminUser,
    EventClientDep,
    RedisDep,
    SaleManager,
    SessionDep,
    SettingsDep,
)
from ticketing.seat.events_client import EventNotFound, venue_of_event
from ticketing.seat.inventory import load_free_seats
from ticketing.seat.layout import seat_map
from ticketing.seat.models import (
    EventSeats,
    FreeSeats,
    Inventory,
    InventoryLoaded,
    Venue,
    VenueCreate,
    VenueLayout,
    VenuePublic,
    VenuePut,
)
from ticketing.seat.seat_maps import Body, SeatMaps, SeatStatus

router = APIRouter()


def _venue_row(venue_id: str, body: VenuePut | VenueCreate) -> Venue:
    layout = VenueLayout.model_validate(body, from_attributes=True)
    return Venue(
        id=venue_id,
        name=body.name,
        layout=layout.model_dump(mode="json"),
        seat_count=layout.count_seats(),
    )


def _public(venue: Venue) -> VenuePublic:
    layout = VenueLayout.model_validate(venue.layout)
    return VenuePublic(
        id=venue.id,
        name=venue.name,
        sections=layout.sections,
        price_tiers=layout.price_tiers,
        seat_count=venue.seat_count,
        seats=seat_map(layout),
    )


@router.post(
    "/venues", status_code=status.HTTP_201_CREATED, tags=["venues"], summary="Create a venue"
)
async def create_venue(body: VenueCreate, session: SessionDep, _: AdminUser) -> VenuePublic:
    venue = _venue_row(body.id or new_slug(body.name), body)
    session.add(venue)
    try:
        await session.commit()
    except IntegrityError as exc:
        raise HTTPException(status.HTTP_409_CONFLICT, "a venue with this id exists") from exc
    return _public(venue)


@router.put(
    "/venues/{venue_id}",
    tags=["venues"],
    summary="Create the venue, or confirm it exists with this layout (idempotent)",
    responses={201: {"description": "created"}, 200: {"description": "existed, same layout"}},
)
async def put_venue(
    venue_id: Slug, body: VenuePut, session: SessionDep, response: Response, _: SaleManager
) -> VenuePublic:
    wanted = _venue_row(venue_id, body)
    existing = await session.get(Venue, venue_id)
    if existing is None:
        session.add(wanted)
        try:
            await session.commit()
        except IntegrityError as exc:
            raise HTTPException(status.HTTP_409_CONFLICT, "venue created concurrently") from exc
        response.status_code = status.HTTP_201_CREATED
        return _public(wanted)
    if (existing.name, existing.layout) != (wanted.name, wanted.layout):
        # Seat ids come from the layout; changing it under a sale would rename sold seats.
        raise HTTPException(status.HTTP_409_CONFLICT, "venue exists with a different layout")
    return _public(existing)


@router.get("/venues/{venue_id}", tags=["venues"], summary="A venue and its seat map")
async def get_venue(venue_id: Slug, session: SessionDep) -> VenuePublic:
    venue = await session.get(Venue, venue_id)
    if venue is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, "venue not found")
    return _public(venue)


@router.post(
    "/events/{event_id}/inventory",
    tags=["inventory"],
    summary="Load every seat of the event's venue as free; seats already held or sold keep their state",
)
async def load_inventory(
    event_id: Slug,
    session: SessionDep,
    redis: RedisDep,
    events: EventClientDep,
    settings: SettingsDep,
    _: SaleManager,
) -> InventoryLoaded:
    try:
        venue_id = await venue_of_event(events, event_id)
    except EventNotFound as exc:
        raise HTTPException(status.HTTP_404_NOT_FOUND, exc.reason) from exc
    venue = await session.get(Venue, venue_id)
    if venue is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, f"the event's venue {venue_id!r} not found")
    # Recorded first, so a sale whose load was interrupted is still known and can be reloaded.
    # A core INSERT runs no model defaults, hence loaded_at here.
    record = insert(Inventory).values(
        event_id=event_id, venue_id=venue.id, seat_count=venue.seat_count, loaded_at=utcnow()
    )
    await session.exec(record.on_duplicate_key_update(seat_count=record.inserted.seat_count))
    await session.commit()
    seats = [seat.id for seat in seat_map(VenueLayout.model_validate(venue.layout))]
    added = await load_free_seats(redis, SaleKeys(settings.redis_key_prefix, event_id), seats)
    return InventoryLoaded(event_id=event_id, venue_id=venue.id, seats=len(seats), added=added)


def _answer(request: Request, body: Body) -> Response:
    headers = {"ETag": body.etag, "Cache-Control": "no-cache"}
    if request.headers.get("if-none-match") == body.etag:
        return Response(status_code=status.HTTP_304_NOT_MODIFIED, headers=headers)
    return Response(body.content, media_type="application/json", headers=headers)


async def _seat_status(request: Request, event_id: str) -> SeatStatus:
    seat_maps: SeatMaps = request.app.state.seat_maps
    seats = await seat_maps.status(event_id)
    if seats is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, "no seat inventory for this event")
    return seats


_NOT_MODIFIED: dict[int | str, dict[str, Any]] = {
    304: {"description": "the caller has this body already (If-None-Match)"}
}
_FRESHNESS = (
    "At most TICKETING_SEAT_MAP_MAX_AGE_SECONDS old (one Redis read per interval, shared by "
    "every caller). Send the ETag back as If-None-Match: an unchanged answer is a 304."
)


@router.get(
    "/events/{event_id}/seats",
    tags=["inventory"],
    summary="Every seat of the sale with its state: free, held or sold",
    description=_FRESHNESS,
    response_model=EventSeats,
    responses=_NOT_MODIFIED,
)
async def event_seats(event_id: Slug, request: Request) -> Response:
    return _answer(request, (await _seat_status(request, event_id)).full)


@router.get(
    "/events/{event_id}/seats/free",
    tags=["inventory"],
    summary="The ids of the sale's free seats, and the counts per state",
    description=_FRESHNESS,
    response_model=FreeSeats,
    responses=_NOT_MODIFIED,
)
async def free_seats(event_id: Slug, request: Request) -> Response:
    return _answer(request, (await _seat_status(request, event_id)).free)
