"""Who is calling: FastAPI dependencies that read the login JWT from the Authorization header."""

from typing import Annotated

from fastapi import Depends, HTTPException, Request, status
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from ticketing.common.settings import CommonSettings
from ticketing.common.tokens import Principal, TokenRejected, verify_access_token

_bearer = HTTPBearer(auto_error=False, description="The access token from POST /auth/login")
_CHALLENGE = {"WWW-Authenticate": "Bearer"}


async def current_principal(
    request: Request,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
) -> Principal:
    if credentials is None:
        raise HTTPException(status.HTTP_401_UNAUTHORIZED, "missing bearer token", _CHALLENGE)
    settings: CommonSettings = request.app.state.settings
    try:
        return verify_access_token(settings, credentials.credentials)
    except TokenRejected as exc:
        raise HTTPException(status.HTTP_401_UNAUTHORIZED, exc.reason, _CHALLENGE) from exc


CurrentUser = Annotated[Principal, Depends(current_principal)]


async def admin_principal(user: CurrentUser) -> Principal:
    if not user.is_admin:
        raise HTTPException(status.HTTP_403_FORBIDDEN, "admin role required")
    return user


AdminUser = Annotated[Principal, Depends(admin_principal)]
