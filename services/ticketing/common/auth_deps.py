"""Who is calling: FastAPI dependencies that read the login JWT, or the operator's service token,
from the Authorization header."""

from typing import Annotated

from fastapi import Depends, HTTPException, Request, status
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from ticketing.common.settings import CommonSettings
from ticketing.common.tokens import Principal, TokenRejected, Tokens

_bearer = HTTPBearer(auto_error=False, description="The access token from POST /auth/login")
_CHALLENGE = {"WWW-Authenticate": "Bearer"}
# The operator's own principal: it may create and update sales (SaleManager) and nothing else.
OPERATOR_ROLE = "operator"
OPERATOR = Principal("ticketing-operator", "", (OPERATOR_ROLE,))


async def current_principal(
    request: Request,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
) -> Principal:
    if credentials is None:
        raise HTTPException(status.HTTP_401_UNAUTHORIZED, "missing bearer token", _CHALLENGE)
    token = credentials.credentials
    if "." not in token:
        # Not a JWT: the operator's service token, known here only by its SHA-256.
        settings: CommonSettings = request.app.state.settings
        if settings.operator_token_accepted(token):
            return OPERATOR
        raise HTTPException(status.HTTP_401_UNAUTHORIZED, "unknown service token", _CHALLENGE)
    tokens: Tokens = request.app.state.tokens
    try:
        return await tokens.principal(token)
    except TokenRejected as exc:
        raise HTTPException(status.HTTP_401_UNAUTHORIZED, exc.reason, _CHALLENGE) from exc


CurrentUser = Annotated[Principal, Depends(current_principal)]


async def caller(request: Request) -> Principal:
    """`CurrentUser`, by a direct call: for a route served outside FastAPI's dependencies."""
    return await current_principal(request, await _bearer(request))


async def admin_principal(user: CurrentUser) -> Principal:
    if not user.is_admin:
        raise HTTPException(status.HTTP_403_FORBIDDEN, "admin role required")
    return user


AdminUser = Annotated[Principal, Depends(admin_principal)]


async def sale_manager(user: CurrentUser) -> Principal:
    """An admin, or the operator setting up the sales its TicketEvents describe."""
    if not (user.is_admin or OPERATOR_ROLE in user.roles):
        raise HTTPException(status.HTTP_403_FORBIDDEN, "admin or operator role required")
    return user


SaleManager = Annotated[Principal, Depends(sale_manager)]
