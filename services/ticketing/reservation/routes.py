"""HTTP routes: hold seats, read, and cancel a reservation."""

from typing import Annotated

from fastapi import APIRouter, HTTPException, Path, Query, status

from ticketing.common.auth_deps import CurrentUser
from ticketing.common.errors import DomainError, TemporaryError
from ticketing.common.ids import Slug
from ticketing.common.ratelimit import refusal
from ticketing.reservation.deps import AdmittedUser, ServiceDep
from ticketing.reservation.holds import (
    EventNotOnSale,
    PurchaseLimitReached,
    SeatsTaken,
    TooManyHolds,
    UnknownSeats,
)
from ticketing.reservation.lifecycle import TransitionRefused
from ticketing.reservation.models import Reservation, ReservationPublic, ReservationRequest
from ticketing.reservation.service import ReservationNotFound

router = APIRouter(tags=["reservations"])

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
    # Counted by the hold itself, once FastAPI has validated the body: a malformed request
    # spends nothing of the buyer's allowance of holds (429 beyond it).
    try:
        reservation = await service.reserve(admission.user_id, event_id, body.seat_ids)
    except TooManyHolds as exc:
        raise refusal(exc.rule, exc.wait_seconds) from exc
    except DomainError as exc:
        raise _http_error(exc) from exc
    return _public(reservation)


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
