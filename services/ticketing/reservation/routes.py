"""HTTP routes: hold seats, read, and cancel a reservation."""

import json
from typing import Annotated

from fastapi import APIRouter, HTTPException, Path, Query, Request, Response, status
from starlette.convertors import Convertor, register_url_convertor
from starlette.routing import Route
from starlette.types import Receive, Scope, Send

from ticketing.common.auth_deps import CurrentUser, caller
from ticketing.common.errors import DomainError, TemporaryError
from ticketing.common.http import is_json, replayed
from ticketing.common.ids import SLUG_PATTERN, Slug
from ticketing.common.ratelimit import refusal
from ticketing.common.tokens import Admission
from ticketing.reservation.deps import (
    ADMISSION_TOKEN_HEADER,
    AdmittedUser,
    ServiceDep,
    admitted_user,
)
from ticketing.reservation.holds import (
    EventNotOnSale,
    PurchaseLimitReached,
    SeatsTaken,
    TooManyHolds,
    UnknownSeats,
)
from ticketing.reservation.lifecycle import TransitionRefused
from ticketing.reservation.models import Reservation, ReservationPublic, ReservationRequest
from ticketing.reservation.service import ReservationNotFound, ReservationService

router = APIRouter(tags=["reservations"])

JSON = "application/json"

# Reservation ids are uuid4 hex (`new_reservation_id`).
ReservationId = Annotated[str, Path(pattern=r"^[0-9a-f]{32}$")]
# Short enough that a stopping replica, which answers its open requests first, stops in time.
MAX_WAIT_SECONDS = 10.0
WaitSeconds = Annotated[
    float,
    Query(
        ge=0,
        le=MAX_WAIT_SECONDS,
        description="while the reservation is PENDING, wait up to this long for it to settle;"
        " the answer comes as soon as it does",
    ),
]

STATUS_OF: list[tuple[type[DomainError], int]] = [
    (EventNotOnSale, status.HTTP_404_NOT_FOUND),
    (ReservationNotFound, status.HTTP_404_NOT_FOUND),
    (UnknownSeats, status.HTTP_422_UNPROCESSABLE_CONTENT),
    (SeatsTaken, status.HTTP_409_CONFLICT),
    (PurchaseLimitReached, status.HTTP_409_CONFLICT),
    (TransitionRefused, status.HTTP_409_CONFLICT),
    (TemporaryError, status.HTTP_503_SERVICE_UNAVAILABLE),
]


def _http_error(error: DomainError) -> HTTPException:
    code = next((code for kind, code in STATUS_OF if isinstance(error, kind)), 400)
    return HTTPException(code, error.reason)


def _public(reservation: Reservation) -> ReservationPublic:
    return ReservationPublic.model_validate(reservation, from_attributes=True)


async def _reserve(
    service: ReservationService, admission: Admission, event_id: str, body: ReservationRequest
) -> ReservationPublic:
    # Counted by the hold itself, once the body is valid: a malformed request spends nothing of
    # the buyer's allowance of holds (429 beyond it).
    try:
        reservation = await service.reserve(admission.user_id, event_id, body.seat_ids)
    except TooManyHolds as exc:
        raise refusal(exc.rule, exc.wait_seconds) from exc
    except DomainError as exc:
        raise _http_error(exc) from exc
    return _public(reservation)


class _SlugConvertor(Convertor[str]):
    """A path segment that is a well-formed event id (`SLUG_PATTERN`)."""

    regex = SLUG_PATTERN.removeprefix("^").removesuffix("$").replace("(", "(?:")

    def convert(self, value: str) -> str:
        return value

    def to_string(self, value: str) -> str:
        return value


register_url_convertor("slug", _SlugConvertor())


class LeanReserve:
    """The hold of a well-formed event id with a JSON body FastAPI would take, served as a plain
    ASGI route: FastAPI's handling of a request (its parameters, dependencies, exit stacks and
    response model) took about a fifth of the reservation process's samples while it took 500
    holds a second (py-spy). Any other body goes on to the documented route, which answers it as
    FastAPI does. The chassis middleware and exception handlers still apply, and count it under
    the documented route."""

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        scope["route"] = _DOCUMENTED_RESERVE
        request = Request(scope, receive)
        body = await request.body()
        content_type = request.headers.get("content-type")
        try:
            if not is_json(None if content_type is None else content_type.encode()):
                raise ValueError("not a JSON body")
            wanted = ReservationRequest.model_validate(json.loads(body))
        # Invalid JSON, UTF-8 or seats (a ValidationError is a ValueError too).
        except (ValueError, RecursionError):
            await _DOCUMENTED_RESERVE.handle(scope, replayed(body, receive), send)
            return
        event_id: str = scope["path_params"]["event_id"]
        user = await caller(request)
        admission = await admitted_user(
            request, event_id, user, request.headers.get(ADMISSION_TOKEN_HEADER)
        )
        service: ReservationService = request.app.state.reservations
        public = await _reserve(service, admission, event_id, wanted)
        response = Response(public.model_dump_json(), status.HTTP_201_CREATED, None, JSON)
        await response(scope, receive, send)


# Matched before the documented route below, which then only meets ids outside the pattern and
# the bodies `LeanReserve` hands on.
# An ASGI app, not a function: Starlette would hand a function endpoint a Request and want a
# Response back, and a body handed on is read once, here.
router.routes.append(
    Route(
        "/events/{event_id:slug}/reservations",
        LeanReserve(),
        methods=["POST"],
        include_in_schema=False,
    )
)


@router.post(
    "/events/{event_id}/reservations",
    status_code=status.HTTP_201_CREATED,
    summary="Hold 1-4 seats (all or none) for the admitted user",
)
async def reserve(
    event_id: Slug,
    body: ReservationRequest,
    admission: AdmittedUser,
    service: ServiceDep,
) -> ReservationPublic:
    """The hold as OpenAPI describes it. Requests reach it with a malformed event id or a body
    FastAPI refuses with its 422 (after the caller's checks); the rest are `LeanReserve`'s."""
    return await _reserve(service, admission, event_id, body)


_DOCUMENTED_RESERVE = router.routes[-1]


@router.get("/reservations/{reservation_id}", summary="The caller's reservation")
async def read_reservation(
    reservation_id: ReservationId,
    user: CurrentUser,
    service: ServiceDep,
    wait_seconds: WaitSeconds = 0,
) -> ReservationPublic:
    try:
        return _public(await service.settled(user.user_id, reservation_id, wait_seconds))
    except DomainError as exc:
        raise _http_error(exc) from exc


@router.post("/reservations/{reservation_id}/cancel", summary="Cancel a pending reservation")
@router.delete("/reservations/{reservation_id}", summary="Cancel a pending reservation")
async def cancel_reservation(
    reservation_id: ReservationId, user: CurrentUser, service: ServiceDep
) -> ReservationPublic:
    try:
        return _public(await service.cancel(user.user_id, reservation_id))
    except DomainError as exc:
        raise _http_error(exc) from exc
