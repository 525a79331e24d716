"""Sign-up, login and the caller's profile."""

from fastapi import APIRouter, HTTPException, status
from sqlalchemy.exc import IntegrityError
from sqlmodel import select

from ticketing.common.tokens import Principal, issue_access_token
from ticketing.user.deps import CurrentUser, SessionDep, SettingsDep
from ticketing.user.models import AccessToken, LoginRequest, User, UserCreate, UserPublic
from ticketing.user.passwords import hash_password, password_matches
from ticketing.user.settings import UserSettings

router = APIRouter(tags=["users"])


def _public(user: User, settings: UserSettings) -> UserPublic:
    return UserPublic(
        id=user.id,
        email=user.email,
        is_admin=settings.is_admin(user.email),
        created_at=user.created_at,
    )


@router.post("/users", status_code=status.HTTP_201_CREATED, summary="Sign up")
async def sign_up(body: UserCreate, session: SessionDep, settings: SettingsDep) -> UserPublic:
    user = User(email=body.email, password_hash=await hash_password(body.password))
    session.add(user)
    try:
        await session.commit()
    except IntegrityError as exc:
        # The unique key decides, so two sign-ups racing for one address cannot both win.
        raise HTTPException(status.HTTP_409_CONFLICT, "email already registered") from exc
    return _public(user, settings)


@router.post("/auth/login", summary="Exchange email and password for an access token")
async def login(body: LoginRequest, session: SessionDep, settings: SettingsDep) -> AccessToken:
    user = (await session.exec(select(User).where(User.email == body.email.lower()))).first()
    matches = await password_matches(user.password_hash if user else None, body.password)
    if user is None or not matches:
        raise HTTPException(status.HTTP_401_UNAUTHORIZED, "wrong email or password")
    roles = ("admin",) if settings.is_admin(user.email) else ()
    token = issue_access_token(settings, Principal(user.id, user.email, roles))
    return AccessToken(access_token=token, expires_in=settings.jwt_ttl_seconds)


@router.get("/users/me", summary="The caller's profile")
async def me(caller: CurrentUser, session: SessionDep, settings: SettingsDep) -> UserPublic:
    user = await session.get(User, caller.user_id)
    if user is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, "user no longer exists")
    return _public(user, settings)
