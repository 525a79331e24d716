"""Request dependencies of the reservation service: the service object and the admitted user."""

from typing import Annotated, cast

from fastapi import Depends, Header, HTTPException, Request, status

from ticketing.common.auth_deps import CurrentUser
from ticketing.common.tokens import Admission, TokenRejected, Tokens
from ticketing.reservation.service import ReservationService


async def get_service(request: Request) -> ReservationService:
    # async: FastAPI runs a plain `def` dependency in its thread pool, a thread hand-off on
    # every request for one attribute read.
    return cast(ReservationService, request.app.state.reservations)


ADMISSION_TOKEN_HEADER = "X-Admission-Token"


async def admitted_user(
    request: Request,
    event_id: str,
    user: CurrentUser,
    admission_token: Annotated[str | None, Header(alias=ADMISSION_TOKEN_HEADER)] = None,
) -> Admission:
    """The caller, if the waiting room admitted them to this event's sale."""
    if not admission_token:
        raise HTTPException(status.HTTP_403_FORBIDDEN, "missing admission token")
    tokens: Tokens = request.app.state.tokens
    try:
        return await tokens.admission_for(admission_token, user.user_id, event_id)
    except TokenRejected as exc:
        raise HTTPException(status.HTTP_403_FORBIDDEN, exc.reason) from exc


ServiceDep = Annotated[ReservationService, Depends(get_service)]
AdmittedUser = Annotated[Admission, Depends(admitted_user)]
