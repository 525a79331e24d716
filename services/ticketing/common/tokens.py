"""Signed tokens every service checks: the user's login JWT and the waiting room's admission token.

Both are HS256 JWTs with an expiry, an audience and an issuer; an admission token also names the
sale it admits to. Verification failures raise `TokenRejected` with a reason a client can read.
"""

import time
import uuid
from dataclasses import dataclass

import jwt

from ticketing.common.settings import CommonSettings

ADMISSION_AUDIENCE = "ticketing-reservation"
ADMISSION_ISSUER = "ticketing-queue"
# Tokens whose signature, audience and issuer were checked, with their claims: a buyer's login
# token is checked on every poll, seat-map read, hold and reservation read, and PyJWT's check
# was a tenth of the reservation service's CPU in a sale's rush. Keyed by the token and what it
# was checked against; the expiry is checked again on every use. Oldest forgotten first.
_VERIFIED: dict[tuple[str, str, str, str], dict[str, object]] = {}
VERIFIED_TOKENS_KEPT = 20_000


class TokenRejected(Exception):
    """A token is missing, forged, expired, or for another audience or sale."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


@dataclass(frozen=True)
class Principal:
    user_id: str
    email: str
    roles: tuple[str, ...]

    @property
    def is_admin(self) -> bool:
        return "admin" in self.roles


@dataclass(frozen=True)
class Admission:
    user_id: str
    event_id: str
    token_id: str
    expires_at: float


def issue_access_token(settings: CommonSettings, principal: Principal) -> str:
    now = int(time.time())
    claims = {
        "sub": principal.user_id,
        "email": principal.email,
        "roles": list(principal.roles),
        "aud": settings.jwt_audience,
        "iss": settings.jwt_issuer,
        "iat": now,
        "exp": now + settings.jwt_ttl_seconds,
    }
    return jwt.encode(claims, settings.jwt_secret.get_secret_value(), algorithm="HS256")


def _decode(token: str, secret: str, audience: str, issuer: str) -> dict[str, object]:
    key = (token, secret, audience, issuer)
    if (claims := _VERIFIED.get(key)) is not None:
        expires = claims["exp"]
        # PyJWT's own rule, without leeway: valid while the expiry is in the future.
        if isinstance(expires, int | float) and expires > time.time():
            return claims
        del _VERIFIED[key]
        raise TokenRejected("token expired")
    claims = _verify(token, secret, audience, issuer)
    if len(_VERIFIED) >= VERIFIED_TOKENS_KEPT:
        del _VERIFIED[next(iter(_VERIFIED))]
    _VERIFIED[key] = claims
    return claims


def _verify(token: str, secret: str, audience: str, issuer: str) -> dict[str, object]:
    try:
        return jwt.decode(
            token,
            secret,
            algorithms=["HS256"],
            audience=audience,
            issuer=issuer,
            options={"require": ["exp", "aud", "iss", "sub"]},
        )
    except jwt.ExpiredSignatureError as exc:
        raise TokenRejected("token expired") from exc
    except jwt.InvalidAudienceError as exc:
        raise TokenRejected("token is for another audience") from exc
    except jwt.InvalidIssuerError as exc:
        raise TokenRejected("token from an unknown issuer") from exc
    except jwt.InvalidSignatureError as exc:
        raise TokenRejected("token signature is invalid") from exc
    except jwt.PyJWTError as exc:
        raise TokenRejected(f"token is malformed: {exc}") from exc


def verify_access_token(settings: CommonSettings, token: str) -> Principal:
    claims = _decode(
        token, settings.jwt_secret.get_secret_value(), settings.jwt_audience, settings.jwt_issuer
    )
    roles = claims.get("roles", [])
    return Principal(
        user_id=str(claims["sub"]),
        email=str(claims.get("email", "")),
        roles=tuple(str(r) for r in roles) if isinstance(roles, list) else (),
    )


def issue_admission_token(
    settings: CommonSettings, user_id: str, event_id: str, ttl_seconds: int
) -> tuple[str, Admission]:
    """A token that lets `user_id` reach reservation for `event_id` until it expires."""
    now = time.time()
    admission = Admission(user_id, event_id, uuid.uuid4().hex, now + ttl_seconds)
    claims = {
        "sub": user_id,
        "sale": event_id,
        "jti": admission.token_id,
        "aud": ADMISSION_AUDIENCE,
        "iss": ADMISSION_ISSUER,
        "iat": int(now),
        "exp": int(admission.expires_at),
    }
    token = jwt.encode(claims, settings.admission_secret.get_secret_value(), algorithm="HS256")
    return token, admission


def verify_admission_token(
    settings: CommonSettings, token: str, user_id: str, event_id: str
) -> Admission:
    """The admission, if the token is genuine, unexpired, and for this user and this sale."""
    claims = _decode(
        token, settings.admission_secret.get_secret_value(), ADMISSION_AUDIENCE, ADMISSION_ISSUER
    )
    if claims.get("sale") != event_id:
        raise TokenRejected("admission token is for another sale")
    if claims["sub"] != user_id:
        raise TokenRejected("admission token belongs to another user")
    expires = claims["exp"]
    return Admission(
        user_id,
        event_id,
        str(claims.get("jti", "")),
        float(expires) if isinstance(expires, int | float) else 0.0,
    )
