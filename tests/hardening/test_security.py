"""Attacks on the front doors: stolen or forged tokens, role escalation, oversized bodies, and
secrets that must never reach a password column or a log line."""

import asyncio
import logging
import time
from collections.abc import AsyncIterator, Iterator

import httpx
import pytest
import redis.asyncio as aioredis
from argon2 import PasswordHasher
from sqlalchemy import text
from ticketing.common.observability import JsonFormatter
from ticketing.common.resources import open_database
from ticketing.common.settings import (
    LOCAL_ADMISSION_SIGNING_KEY,
    LOCAL_LOGIN_SIGNING_KEY,
    LOCAL_OPERATOR_TOKEN,
    CommonSettings,
)
from ticketing.common.tokens import (
    ADMISSION_AUDIENCE,
    ADMISSION_ISSUER,
    Principal,
    issue_access_token,
)
from ticketing.reservation.app import create_app as create_reservation_app
from ticketing.reservation.service import ReservationService

from tests.core.conftest import Serve
from tests.core.factories import (
    PASSWORD,
    admin_token,
    bearer,
    forge,
    sign_up_and_log_in,
    signing_kid,
    user_token,
)
from tests.core.sale_kit import make_sale, reservation_settings
from tests.hardening.apps import APPS
from tests.hardening.forgery import forged_access_tokens, tampered

FORGED = list(forged_access_tokens(CommonSettings()))


@pytest.mark.parametrize("kind", FORGED)
async def test_forged_or_expired_login_token_is_refused_with_401_and_a_reason(
    kind: str, migrated_database: str, serve: Serve, settings: CommonSettings
) -> None:
    events = await serve(APPS["event"](settings))
    token, reason = forged_access_tokens(settings)[kind]

    response = await events.post("/events", json={"title": "x"}, headers=bearer(token))

    assert response.status_code == 401
    assert reason in response.json()["detail"]
    assert response.headers["WWW-Authenticate"] == "Bearer"


async def test_a_login_token_accepted_before_is_refused_once_it_has_expired(
    migrated_database: str, serve: Serve, settings: CommonSettings
) -> None:
    events = await serve(APPS["event"](settings))
    short = settings.model_copy(update={"jwt_ttl_seconds": 2})
    token = bearer(admin_token(short))
    assert (await events.post("/events", json={"title": "x"}, headers=token)).status_code != 401

    await asyncio.sleep(2.1)

    # Checked tokens are remembered, but never past their expiry.
    response = await events.post("/events", json={"title": "x"}, headers=token)
    assert (response.status_code, response.json()["detail"]) == (401, "token expired")


ADMIN = "admin role required"
SALE_MANAGER = "admin or operator role required"
# Service, method, path, and what a plain user is told: the routes that set a sale up also
# take the operator's service token; the others take an admin alone.
ADMIN_ROUTES = [
    ("event", "POST", "/events", ADMIN),
    ("event", "PUT", "/events/some-event", SALE_MANAGER),
    ("seat", "POST", "/venues", ADMIN),
    ("seat", "PUT", "/venues/some-venue", SALE_MANAGER),
    ("seat", "POST", "/events/some-event/inventory", SALE_MANAGER),
    ("payment", "GET", "/payments/some-reservation", ADMIN),
]


@pytest.fixture
async def clients(
    migrated_database: str, serve: Serve, settings: CommonSettings
) -> dict[str, httpx.AsyncClient]:
    return {name: await serve(APPS[name](settings)) for name in ("event", "seat", "payment")}


@pytest.mark.slow
async def test_admin_endpoints_refuse_a_user_with_403_and_a_stranger_with_401(
    clients: dict[str, httpx.AsyncClient], settings: CommonSettings
) -> None:
    user = bearer(user_token(settings))
    for service, method, path, refusal in ADMIN_ROUTES:
        client = clients[service]
        as_user = await client.request(method, path, json={}, headers=user)
        as_nobody = await client.request(method, path, json={})
        assert (as_user.status_code, as_user.json()["detail"]) == (403, refusal), (method, path)
        assert as_nobody.status_code == 401, (method, path)


@pytest.mark.slow
async def test_operator_token_sets_sales_up_and_does_nothing_else(
    clients: dict[str, httpx.AsyncClient], settings: CommonSettings
) -> None:
    operator = bearer(LOCAL_OPERATOR_TOKEN)
    for service, method, path, refusal in ADMIN_ROUTES:
        response = await clients[service].request(method, path, json={}, headers=operator)
        if refusal == ADMIN:
            assert (response.status_code, response.json()["detail"]) == (403, ADMIN), path
        else:
            # Past the door: what is refused now, if anything, is the request itself.
            assert response.status_code not in (401, 403), (method, path, response.text)
    guessed = bearer("a-guessed-operator-token-0123456789")
    response = await clients["event"].put("/events/some-event", json={}, headers=guessed)
    assert (response.status_code, response.json()["detail"]) == (401, "unknown service token")


@pytest.fixture
async def reservations(
    settings: CommonSettings, migrated_database: str, redis_client: aioredis.Redis
) -> AsyncIterator[httpx.AsyncClient]:
    """The reservation API over the real service, without its Kafka side."""
    app = create_reservation_app(reservation_settings(settings))
    async with open_database(migrated_database) as engine:
        app.state.reservations = ReservationService(
            engine, redis_client, reservation_settings(settings)
        )
        async with httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app), base_url="http://reservation"
        ) as client:
            yield client


def _admission(settings: CommonSettings, **overrides: object) -> str:
    now = int(time.time())
    claims = {
        "sub": "alice",
        "sale": "sale-a",
        "jti": "j1",
        "aud": ADMISSION_AUDIENCE,
        "iss": ADMISSION_ISSUER,
        "iat": now,
        "exp": now + 300,
        **overrides,
    }
    key = settings.admission_signing_keys.get_secret_value() or LOCAL_ADMISSION_SIGNING_KEY
    return forge(claims, kid=signing_kid(settings, "admission"), key=key, kind="admission")


ADMISSIONS = {
    "forged": (
        lambda s: forge(
            {"sub": "alice", "sale": "sale-a"}, kid=signing_kid(s, "admission"), kind="admission"
        ),
        "signature",
    ),
    "replayed-after-expiry": (
        lambda s: _admission(s, iat=int(time.time()) - 400, exp=int(time.time()) - 100),
        "token expired",
    ),
    "other-sale": (lambda s: _admission(s, sale="sale-b"), "for another sale"),
    "other-user": (lambda s: _admission(s, sub="bob"), "belongs to another user"),
    "login-token-instead": (lambda s: user_token(s), "a login token is not an admission token"),
    "missing": (lambda s: "", "missing admission token"),
}


@pytest.mark.parametrize("kind", list(ADMISSIONS))
async def test_hold_without_a_genuine_admission_for_this_sale_is_refused_with_403(
    kind: str,
    reservations: httpx.AsyncClient,
    settings: CommonSettings,
    redis_client: aioredis.Redis,
) -> None:
    await make_sale(redis_client, settings.redis_key_prefix, seats=2)
    make_token, reason = ADMISSIONS[kind]
    alice = bearer(issue_access_token(settings, Principal("alice", "alice@example.org", ())))
    headers = {**alice, "X-Admission-Token": make_token(settings)}

    response = await reservations.post(
        "/events/sale-a/reservations", json={"seat_ids": ["A-1"]}, headers=headers
    )

    assert response.status_code == 403
    assert reason in response.json()["detail"]


async def test_genuine_admission_for_this_sale_gets_past_the_door(
    reservations: httpx.AsyncClient, settings: CommonSettings
) -> None:
    alice = bearer(issue_access_token(settings, Principal("alice", "alice@example.org", ())))
    headers = {**alice, "X-Admission-Token": _admission(settings)}

    response = await reservations.post(
        "/events/sale-a/reservations", json={"seat_ids": ["A-1"]}, headers=headers
    )

    # The door opened; the sale itself has no seats loaded.
    assert response.status_code == 404
    assert "no seats on sale" in response.json()["detail"]


async def test_password_is_stored_as_an_argon2id_hash_only(
    migrated_database: str, serve: Serve, settings: CommonSettings
) -> None:
    users = await serve(APPS["user"](settings))
    await sign_up_and_log_in(users, email="hashed@example.org")

    async with open_database(migrated_database) as engine, engine.connect() as conn:
        stored = (
            await conn.execute(
                text("SELECT password_hash FROM users WHERE email = 'hashed@example.org'")
            )
        ).scalar_one()

    assert PASSWORD not in stored
    assert stored.startswith("$argon2id$")
    assert PasswordHasher().verify(stored, PASSWORD)


OVERSIZED = 8 * 1024 * 1024


@pytest.mark.slow
@pytest.mark.parametrize(
    ("service", "path"),
    [("user", "/users"), ("user", "/auth/login"), ("event", "/events"), ("seat", "/venues")],
)
async def test_oversized_body_is_refused_with_413_or_422_not_500(
    service: str, path: str, migrated_database: str, serve: Serve, settings: CommonSettings
) -> None:
    client = await serve(APPS[service](settings))
    admin = bearer(issue_access_token(settings, Principal("root", "root@example.org", ("admin",))))
    body = {"email": "big@example.org", "password": "p" * OVERSIZED, "title": "t" * OVERSIZED}

    response = await client.post(path, json=body, headers=admin)

    assert response.status_code in (413, 422)


@pytest.fixture
def json_log_lines() -> Iterator[list[str]]:
    """Every log line written while the test runs, formatted as the services write them."""
    lines: list[str] = []
    formatter = JsonFormatter("test")

    class Capture(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            lines.append(formatter.format(record))

    root = logging.getLogger()
    handler, level = Capture(logging.DEBUG), root.level
    root.addHandler(handler)
    root.setLevel(logging.DEBUG)
    try:
        yield lines
    finally:
        root.removeHandler(handler)
        root.setLevel(level)


async def test_login_and_token_checks_never_log_a_password_token_or_secret(
    migrated_database: str, serve: Serve, settings: CommonSettings, json_log_lines: list[str]
) -> None:
    users = await serve(APPS["user"](settings))
    token = await sign_up_and_log_in(users, email="quiet@example.org")
    await users.post("/auth/login", json={"email": "quiet@example.org", "password": "wrong-pw"})
    await users.get("/users/me", headers=bearer(token))
    await users.get("/users/me", headers=bearer(tampered(token, settings)))

    logged = "\n".join(json_log_lines)
    assert "/auth/login" in logged  # the requests were logged...
    secrets = {
        "password": PASSWORD,
        "wrong password": "wrong-pw",
        "access token": token,
        "token signature": token.rsplit(".", 1)[1],
        "login signing key": LOCAL_LOGIN_SIGNING_KEY,
        "admission signing key": LOCAL_ADMISSION_SIGNING_KEY,
    }
    leaked = [name for name, secret in secrets.items() if secret in logged]
    assert not leaked  # ...and none of their secrets
