"""Small helpers that make test data through the public API or the shared token code."""

import uuid
from datetime import UTC, datetime, timedelta

import httpx
import jwt
from ticketing.common.keys import ALGORITHM, key_id, private_keys
from ticketing.common.settings import CommonSettings, TokenKindName
from ticketing.common.tokens import TOKEN_TYPES, Principal, issue_access_token

PASSWORD = "correct horse battery staple"
# An Ed25519 key no component holds or publishes: what an attacker signs with.
ATTACKER_KEY = "a1" * 32


def signing_kid(settings: CommonSettings, kind: TokenKindName = "login") -> str:
    """The key id the platform's `kind` tokens carry."""
    return key_id(settings.signing_keys(kind)[0].public_key())


def forge(
    claims: dict[str, object],
    *,
    kid: str,
    key: str = ATTACKER_KEY,
    kind: TokenKindName = "login",
) -> str:
    """A token shaped like the platform's, signed with `key` (hex) but naming `kid`."""
    headers = {"kid": kid, "typ": TOKEN_TYPES[kind]}
    return jwt.encode(claims, private_keys(key)[0], algorithm=ALGORITHM, headers=headers)


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


def event_body(venue_id: str, **overrides: object) -> dict[str, object]:
    """An event whose sale opens in a day and lasts two hours."""
    opens = datetime.now(UTC) + timedelta(days=1)
    return {
        "title": "Spring Concert",
        "venue_id": venue_id,
        "opens_at": opens.isoformat(),
        "closes_at": (opens + timedelta(hours=2)).isoformat(),
        **overrides,
    }


def venue_body(rows: int = 4, seats_per_row: int = 5, **overrides: object) -> dict[str, object]:
    """A venue of one section with a front half priced higher than the back."""
    front = rows // 2
    return {
        "name": "Main Hall",
        "price_tiers": [
            {"name": "front", "price_cents": 9000},
            {"name": "back", "price_cents": 5000},
        ],
        "sections": [
            {
                "name": "stalls",
                "rows": front,
                "seats_per_row": seats_per_row,
                "price_tier": "front",
            },
            {
                "name": "circle",
                "rows": rows - front,
                "seats_per_row": seats_per_row,
                "price_tier": "back",
            },
        ],
        **overrides,
    }
