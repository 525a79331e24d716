"""Dependencies of the queue service's routes."""

from typing import Annotated

from fastapi import Depends, HTTPException, Path, Request, status
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from starlette.requests import HTTPConnection

from ticketing.common.auth_deps import current_principal
from ticketing.common.sale_config import SaleConfig, read_sale_config
from ticketing.common.tokens import Principal
from ticketing.queue.hub import Hub
from ticketing.queue.joins import Joins
from ticketing.queue.metrics import TOKEN_REJECTIONS
from ticketing.queue.settings import QueueSettings
from ticketing.queue.store import Place, PlaceState

# Sale ids go into Redis hash tags, so braces and other surprises are refused at the door.
EVENT_ID_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,99}$"
EventId = Annotated[str, Path(pattern=EVENT_ID_PATTERN)]
_bearer = HTTPBearer(auto_error=False, description="The access token from POST /auth/login")


# HTTPConnection rather than Request: the WebSocket route uses these too. Async, although they
# only read app.state: FastAPI runs a plain `def` dependency in its thread pool, a thread hop
# per request that cost about a fifth of the CPU a join takes (loadtest.bench_join).
async def get_queue_settings(connection: HTTPConnection) -> QueueSettings:
    settings: QueueSettings = connection.app.state.settings
    return settings


async def get_hub(connection: HTTPConnection) -> Hub:
    hub: Hub = connection.app.state.hub
    return hub


async def counted_principal(
    request: Request,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
) -> Principal:
    """The caller, as `CurrentUser` resolves it, with refused login tokens counted."""
    try:
        return await current_principal(request, credentials)
    except HTTPException as exc:
        TOKEN_REJECTIONS.labels(str(exc.detail)).inc()
        raise


async def caller(request: Request) -> Principal:
    """`QueueUser`, by a direct call: for the join route, where each dependency FastAPI resolves
    costs CPU on the busiest request. The route declares `BEARER_SECURITY` for its schema."""
    return await counted_principal(request, await _bearer(request))


# The OpenAPI security requirement `QueueUser` adds to a route, for a route that calls `caller`.
BEARER_SECURITY: dict[str, object] = {"security": [{_bearer.scheme_name: []}]}

SettingsDep = Annotated[QueueSettings, Depends(get_queue_settings)]
HubDep = Annotated[Hub, Depends(get_hub)]


async def sale_config(event_id: EventId, hub: HubDep) -> SaleConfig:
    # The hub's client is the app's Redis client (RedisDep's `def` would cost a thread hop).
    config = await read_sale_config(hub.client, hub.settings.redis_key_prefix, event_id)
    if config is None:
        raise no_sale(event_id)
    return config


def no_sale(event_id: str) -> HTTPException:
    return HTTPException(status.HTTP_404_NOT_FOUND, f"no sale {event_id!r} is configured")


_PLACE_REFUSALS = {
    PlaceState.NOT_OPEN: "the waiting room is not open yet",
    PlaceState.CLOSED: "the sale has closed",
}


def place_refusal(place: Place) -> HTTPException | None:
    """The 409 that answers a join finding the waiting room not open yet, or closed."""
    if place.state in _PLACE_REFUSALS:
        return HTTPException(status.HTTP_409_CONFLICT, _PLACE_REFUSALS[place.state])
    return None


QueueUser = Annotated[Principal, Depends(counted_principal)]
SaleDep = Annotated[SaleConfig, Depends(sale_config)]


def joins_of(connection: HTTPConnection) -> Joins:
    """This app's `Joins` (made by its lifespan). A plain function, not a dependency: the join
    routes call it directly (each dependency FastAPI resolves costs the busiest route CPU)."""
    joins: Joins = connection.app.state.joins
    return joins
