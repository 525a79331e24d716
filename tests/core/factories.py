"""Small helpers that make test data through the public API or the shared token code."""

import uuid

import httpx
from ticketing.common.settings import CommonSettings
from ticketing.common.tokens import Principal, issue_access_token

PASSWORD = "correct horse battery staple"


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def admin_token(settings: CommonSettings) -> str:
    """A token as the user service issues it to an address listed in TICKETING_ADMIN_EMAILS."""
    principal = Principal(uuid.uuid4().hex, "admin@example.org", ("admin",))
    return issue_access_token(settings, principal)


def user_token(settings: CommonSettings) -> str:
    return issue_access_token(settings, Principal(uuid.uuid4().hex, "fan@example.org", ()))


async def sign_up_and_log_in(
    users: httpx.AsyncClient, email: str | None = None, password: str = PASSWORD
) -> str:
    """Sign a new user up through the user service and return their access token."""
    email = email or f"fan-{uuid.uuid4().hex[:8]}@example.org"
    signed_up = await users.post("/users", json={"email": email, "password": password})
    assert signed_up.status_code == 201, signed_up.text
    logged_in = await users.post("/auth/login", json={"email": email, "password": password})
    assert logged_in.status_code == 200, logged_in.text
    token: str = logged_in.json()["access_token"]
    return token
