"""The user service: sign-up, login, the caller's profile, and rejected tokens."""

import time
from collections.abc import AsyncIterator

import httpx
import pytest
from sqlalchemy.engine import make_url
from ticketing.common.settings import LOCAL_LOGIN_SIGNING_KEY, CommonSettings
from ticketing.user.app import create_app
from ticketing.user.settings import UserSettings
from ticketing_dev.ports import free_port

from tests.core.conftest import Serve
from tests.core.factories import (
    ATTACKER_KEY,
    PASSWORD,
    bearer,
    forge,
    sign_up_and_log_in,
    signing_kid,
)

ADMIN_EMAIL = "Boss@Example.org"


@pytest.fixture
async def users(
    settings: CommonSettings, migrated_database: str, serve: Serve
) -> httpx.AsyncClient:
    user_settings = UserSettings(**settings.model_dump(), admin_emails=ADMIN_EMAIL)
    return await serve(create_app(user_settings))


async def test_signed_up_user_logs_in_and_reads_their_profile(users: httpx.AsyncClient) -> None:
    token = await sign_up_and_log_in(users, "Fan@Example.org")
    me = await users.get("/users/me", headers=bearer(token))
    assert me.status_code == 200
    assert me.json()["email"] == "fan@example.org"
    assert me.json()["is_admin"] is False


async def test_sign_up_with_a_registered_email_is_a_conflict(users: httpx.AsyncClient) -> None:
    await sign_up_and_log_in(users, "twice@example.org")
    again = await users.post("/users", json={"email": "TWICE@example.org", "password": PASSWORD})
    assert again.status_code == 409
    assert again.json()["detail"] == "email already registered"


@pytest.mark.parametrize(
    "body",
    [
        pytest.param({"email": "not-an-address", "password": PASSWORD}, id="bad-email"),
        pytest.param({"email": "short@example.org", "password": "short"}, id="short-password"),
        pytest.param({"email": "nopass@example.org"}, id="missing-password"),
    ],
)
async def test_sign_up_with_a_malformed_body_is_rejected(
    users: httpx.AsyncClient, body: dict[str, str]
) -> None:
    response = await users.post("/users", json=body)
    assert response.status_code == 422
    assert response.json()["detail"]


@pytest.mark.parametrize(
    ("email", "reason"),
    [
        pytest.param("nul\x00byte@example.org", "U+0000", id="nul-byte"),
        pytest.param("bell\x07@example.org", "U+0007", id="control-character"),
        pytest.param("fan@example.org\n", "U+000A", id="trailing-newline"),
        pytest.param("flip\u202e@example.org", "RIGHT-TO-LEFT OVERRIDE", id="bidi-override"),
        pytest.param("two words@example.org", "SPACE", id="space"),
        pytest.param("fan@localhost", "should have a period", id="no-domain"),
        pytest.param("fan@x.invalid", "special-use or reserved name", id="reserved-domain"),
    ],
)
async def test_sign_up_refuses_an_address_the_email_standards_refuse_naming_why(
    users: httpx.AsyncClient, email: str, reason: str
) -> None:
    response = await users.post("/users", json={"email": email, "password": PASSWORD})

    assert response.status_code == 422
    [error] = response.json()["detail"]
    assert error["loc"] == ["body", "email"]
    assert error["msg"].startswith("Value error, not an email address")
    assert reason in error["msg"]
    assert (
        await users.post("/auth/login", json={"email": email, "password": PASSWORD})
    ).status_code == 401


@pytest.mark.parametrize("email", ["known@example.org", "unknown@example.org"])
async def test_login_with_a_wrong_password_or_email_is_unauthorized(
    users: httpx.AsyncClient, email: str
) -> None:
    await sign_up_and_log_in(users, "known@example.org")
    response = await users.post("/auth/login", json={"email": email, "password": "wrong-pass"})
    assert response.status_code == 401
    assert response.json()["detail"] == "wrong email or password"


async def test_listed_admin_email_logs_in_as_admin(users: httpx.AsyncClient) -> None:
    token = await sign_up_and_log_in(users, ADMIN_EMAIL)
    me = await users.get("/users/me", headers=bearer(token))
    assert me.json()["is_admin"] is True


def _forged(settings: CommonSettings, **overrides: object) -> str:
    now = int(time.time())
    claims = {
        "sub": "someone",
        "aud": settings.jwt_audience,
        "iss": settings.jwt_issuer,
        "iat": now,
        "exp": now + 60,
        **overrides,
    }
    key = str(claims.pop("key", LOCAL_LOGIN_SIGNING_KEY))
    return forge(claims, kid=signing_kid(settings), key=key)


@pytest.mark.parametrize(
    ("overrides", "reason"),
    [
        pytest.param({"exp": int(time.time()) - 10}, "token expired", id="expired"),
        pytest.param(
            {"key": ATTACKER_KEY},
            "token signature is invalid",
            id="forged",
        ),
        pytest.param({"aud": "elsewhere"}, "token is for another audience", id="audience"),
    ],
)
async def test_profile_with_a_rejected_token_is_unauthorized_with_the_reason(
    users: httpx.AsyncClient, settings: CommonSettings, overrides: dict[str, object], reason: str
) -> None:
    response = await users.get("/users/me", headers=bearer(_forged(settings, **overrides)))
    assert response.status_code == 401
    assert response.json()["detail"] == reason
    assert response.headers["WWW-Authenticate"] == "Bearer"


async def test_profile_without_a_token_is_unauthorized(users: httpx.AsyncClient) -> None:
    response = await users.get("/users/me")
    assert response.status_code == 401
    assert response.json()["detail"] == "missing bearer token"


async def test_login_while_the_database_is_unreachable_is_a_503_naming_it(
    settings: CommonSettings, serve: Serve
) -> None:
    unreachable = UserSettings(
        **{**settings.model_dump(), "database_url": _closed_port_url(settings.database_url)}
    )
    users = await serve(create_app(unreachable))
    response = await users.post(
        "/auth/login", json={"email": "fan@example.org", "password": PASSWORD}
    )
    assert response.status_code == 503
    assert response.json()["detail"] == "database unavailable"
    assert response.headers["Retry-After"] == "1"


def _closed_port_url(database_url: str) -> str:
    url = make_url(database_url)
    return url.set(port=free_port()).render_as_string(hide_password=False)


@pytest.mark.parametrize("declared", [True, False], ids=["content-length", "chunked"])
async def test_an_oversized_body_is_refused_with_413_before_it_is_parsed(
    users: httpx.AsyncClient, declared: bool
) -> None:
    body = b'{"email": "big@example.org", "password": "' + b"x" * 100_000 + b'"}'

    async def chunks() -> AsyncIterator[bytes]:
        for start in range(0, len(body), 8192):
            yield body[start : start + 8192]

    response = await users.post(
        "/users",
        content=body if declared else chunks(),
        headers={"Content-Type": "application/json"},
    )
    assert response.status_code == 413
    assert response.json()["detail"] == "request body is larger than 65536 bytes"
