"""Tokens an attacker can make: with another key, another algorithm, no key id, someone
else's claims, or the other kind of token; each with the reason a verifier must give."""

import base64
import hashlib
import hmac
import json
import time

import jwt
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat
from ticketing.common.settings import LOCAL_LOGIN_SIGNING_KEY, CommonSettings
from ticketing.common.tokens import TOKEN_TYPES, issue_admission_token

from tests.core.factories import forge, signing_kid, user_token


def access_claims(settings: CommonSettings, **overrides: object) -> dict[str, object]:
    now = int(time.time())
    return {
        "sub": "mallory",
        "email": "mallory@example.org",
        "roles": ["admin"],
        "aud": settings.jwt_audience,
        "iss": settings.jwt_issuer,
        "iat": now,
        "exp": now + 600,
        **overrides,
    }


def _genuine(settings: CommonSettings, **overrides: object) -> str:
    """Claims of the attacker's choosing, signed with the platform's own login key."""
    key = settings.login_signing_keys.get_secret_value() or LOCAL_LOGIN_SIGNING_KEY
    return forge(access_claims(settings, **overrides), kid=signing_kid(settings), key=key)


def tampered(token: str, settings: CommonSettings) -> str:
    """A real user's token with its payload swapped for one that claims the admin role."""
    header, _, signature = token.split(".")
    forged = forge(access_claims(settings), kid=signing_kid(settings)).split(".")[1]
    return f"{header}.{forged}.{signature}"


def _b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def hs256_with_public_key(settings: CommonSettings, public_key: bytes) -> str:
    """Algorithm confusion: HS256 keyed with the signer's public key, which anyone can fetch.
    Built by hand: PyJWT itself refuses to use a public key as an HMAC secret."""
    header = {"alg": "HS256", "typ": TOKEN_TYPES["login"], "kid": signing_kid(settings)}
    signing_input = ".".join(
        _b64(json.dumps(part).encode()) for part in (header, access_claims(settings))
    )
    mac = hmac.new(public_key, signing_input.encode(), hashlib.sha256).digest()
    return f"{signing_input}.{_b64(mac)}"


def forged_access_tokens(settings: CommonSettings) -> dict[str, tuple[str, str]]:
    """Name -> (token, the reason the service must give)."""
    kid = signing_kid(settings)
    private = settings.signing_keys("login")[0]
    public = private.public_key()
    return {
        "another-key-same-kid": (
            forge(access_claims(settings), kid=kid),
            "token signature is invalid",
        ),
        "unknown-kid": (
            forge(access_claims(settings), kid="no-such-key"),
            "token signed by an unknown or retired key",
        ),
        "no-kid": (
            jwt.encode(
                access_claims(settings),
                private,
                algorithm="EdDSA",
                headers={"typ": TOKEN_TYPES["login"]},
            ),
            "token names no key (kid)",
        ),
        "hs256-keyed-with-the-public-key": (
            hs256_with_public_key(settings, public.public_bytes(Encoding.Raw, PublicFormat.Raw)),
            "token algorithm is not accepted (EdDSA only)",
        ),
        "hs256-keyed-with-the-public-pem": (
            hs256_with_public_key(
                settings, public.public_bytes(Encoding.PEM, PublicFormat.SubjectPublicKeyInfo)
            ),
            "token algorithm is not accepted (EdDSA only)",
        ),
        "alg-none": (
            jwt.encode(
                access_claims(settings),
                None,
                algorithm="none",
                headers={"kid": kid, "typ": TOKEN_TYPES["login"]},
            ),
            "token algorithm is not accepted (EdDSA only)",
        ),
        "expired": (_genuine(settings, exp=int(time.time()) - 1), "token expired"),
        "other-audience": (_genuine(settings, aud="someone-else"), "another audience"),
        "unknown-issuer": (_genuine(settings, iss="evil"), "unknown issuer"),
        "tampered-payload": (
            tampered(user_token(settings), settings),
            "token signature is invalid",
        ),
        "admission-token-as-login": (
            issue_admission_token(settings, "mallory", "any", 60)[0],
            "an admission token is not a login token",
        ),
        "garbage": ("not.a.jwt", "malformed"),
    }
