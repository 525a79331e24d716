"""Signed tokens every service checks: the user's login JWT and the waiting room's admission token.

Both are EdDSA (Ed25519) JWTs with an expiry, an audience, an issuer, a `typ` header saying
which of the two they are and a `kid` naming the key that signed them; an admission token also
names the sale it admits to. Only the signer holds a private key (the user service for logins,
the queue for admissions) and publishes the public halves at `GET /.well-known/jwks.json`; every
other component verifies with those, fetched and cached by key id (`TokenVerifier`).
Verification failures raise `TokenRejected` with a reason a client can read.
"""

import asyncio
import logging
import time
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Protocol

import httpx
import jwt
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from fastapi import APIRouter

from ticketing.common.errors import TemporaryError
from ticketing.common.keys import ALGORITHM, InvalidKey, jwks, key_id, public_keys, read_jwks
from ticketing.common.settings import CommonSettings, InsecureSettings, TokenKindName

ADMISSION_AUDIENCE = "ticketing-reservation"
ADMISSION_ISSUER = "ticketing-queue"
JWKS_PATH = "/.well-known/jwks.json"
# The JOSE `typ` of each kind (RFC 9068's for access tokens), so that one kind is never taken
# for the other even if a deployment gave both signers one key.
TOKEN_TYPES: Mapping[TokenKindName, str] = {"login": "at+jwt", "admission": "admission+jwt"}
_A: Mapping[TokenKindName, str] = {"login": "a login", "admission": "an admission"}
# Checked tokens are remembered with their claims: a buyer's login token is checked on every
# poll, seat-map read, hold and reservation read, and the signature check was a tenth of the
# reservation service's CPU in a sale's rush. The expiry and the key are checked on every use.
VERIFIED_TOKENS_KEPT = 20_000
# The key ids of accepted token headers, by their encoded segment: every token one key signs
# carries the same header, and PyJWT reads and checks the whole token to give it (about 15 µs of
# a join's CPU, loadtest.bench_join). The signature check reads the token again, header included.
HEADERS_KEPT = 64
# An unknown key id is looked up in the signer's JWKS at most this often, so a flood of made-up
# ids costs the signer one request a second per process.
UNKNOWN_KEY_REFETCH_SECONDS = 1.0
JWKS_TIMEOUT_SECONDS = 3.0

log = logging.getLogger("ticketing.tokens")


class TokenRejected(Exception):
    """A token is missing, forged, expired, or for another audience or sale."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class KeysUnavailable(TemporaryError):
    """The signer's key set could not be fetched and none is cached yet."""


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


def _sign(settings: CommonSettings, kind: TokenKindName, claims: dict[str, object]) -> str:
    keys = settings.signing_keys(kind)
    if not keys:
        raise RuntimeError(f"this process holds no {kind} signing key")
    headers = {"kid": key_id(keys[0].public_key()), "typ": TOKEN_TYPES[kind]}
    return jwt.encode(claims, keys[0], algorithm=ALGORITHM, headers=headers)


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
    return _sign(settings, "login", claims)


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
    return _sign(settings, "admission", claims), admission


class KeySource(Protocol):
    async def key(self, kid: str) -> Ed25519PublicKey | None: ...

    async def aclose(self) -> None: ...


@dataclass(frozen=True)
class OwnKeys:
    """The public halves of this process's own signing keys: the signer checking its own tokens,
    or any component on a developer's machine where no JWKS URL is set."""

    keys: Mapping[str, Ed25519PublicKey]

    async def key(self, kid: str) -> Ed25519PublicKey | None:
        return self.keys.get(kid)

    async def aclose(self) -> None:
        return None


class PublishedKeys:
    """A signer's JWKS, fetched when first needed, again after `max_age`, and at once (at most
    once a second) for a key id it does not hold, so a new key verifies as soon as it signs. A
    token whose key is unknown while a fetch is in flight waits for that fetch.

    When the signer cannot be reached the keys already fetched stay in use; a process that never
    fetched them answers `KeysUnavailable` (503) rather than refusing every token."""

    def __init__(self, url: str, max_age: float) -> None:
        self.url = url
        self.max_age = max_age
        self._keys: dict[str, Ed25519PublicKey] = {}
        self._fetched = False
        self._attempted_at = -float("inf")
        self._lock = asyncio.Lock()
        self._client: httpx.AsyncClient | None = None

    async def key(self, kid: str) -> Ed25519PublicKey | None:
        age = time.monotonic() - self._attempted_at
        unknown = kid not in self._keys
        # A fetch in flight may bring the key: wait for it rather than refuse the token.
        if age >= self.max_age or (
            unknown and (age >= UNKNOWN_KEY_REFETCH_SECONDS or self._lock.locked())
        ):
            await self._refresh()
        return self._keys.get(kid)

    async def _refresh(self) -> None:
        async with self._lock:
            # Another request may have fetched while this one waited for the lock.
            if time.monotonic() - self._attempted_at < UNKNOWN_KEY_REFETCH_SECONDS:
                return
            self._attempted_at = time.monotonic()
            if self._client is None:
                self._client = httpx.AsyncClient(timeout=JWKS_TIMEOUT_SECONDS)
            try:
                response = await self._client.get(self.url)
                response.raise_for_status()
                self._keys = read_jwks(response.json())
                self._fetched = True
            except (httpx.HTTPError, ValueError, InvalidKey) as exc:
                log.warning("could not fetch the key set at %s: %r", self.url, exc)
                if not self._fetched:
                    raise KeysUnavailable("token keys unavailable") from exc

    async def aclose(self) -> None:
        if self._client is not None:
            await self._client.aclose()


class TokenVerifier:
    """Checks one kind of token: its type, algorithm, key, signature, audience and issuer."""

    def __init__(self, kind: TokenKindName, keys: KeySource, audience: str, issuer: str) -> None:
        self.kind = kind
        self.keys = keys
        self.audience = audience
        self.issuer = issuer
        self._verified: dict[str, tuple[str, dict[str, object]]] = {}
        self._headers: dict[str, str] = {}

    @classmethod
    def from_settings(cls, settings: CommonSettings, kind: TokenKindName) -> "TokenVerifier":
        url = settings.jwks_url(kind)
        source: KeySource = (
            PublishedKeys(url, settings.jwks_max_age_seconds)
            if url and not settings.signs(kind)
            else OwnKeys(public_keys(settings.signing_keys(kind)))
        )
        if kind == "login":
            return cls(kind, source, settings.jwt_audience, settings.jwt_issuer)
        return cls(kind, source, ADMISSION_AUDIENCE, ADMISSION_ISSUER)

    async def claims(self, token: str, *, remember: bool = True) -> dict[str, object]:
        """The token's claims once verified. `remember=False` for a token checked once (a
        waiting socket's, for its whole life): kept, it would hold memory for nothing and push
        out tokens that are checked again."""
        if (seen := self._verified.get(token)) is not None:
            kid, claims = seen
            expires = claims["exp"]
            # PyJWT's own rule, without leeway: valid while the expiry is in the future.
            if not (isinstance(expires, int | float) and expires > time.time()):
                del self._verified[token]
                raise TokenRejected("token expired")
            if await self.keys.key(kid) is None:
                del self._verified[token]
                raise TokenRejected("token signed by an unknown or retired key")
            return claims
        kid, claims = await self._verify(token)
        if not remember:
            return claims
        if len(self._verified) >= VERIFIED_TOKENS_KEPT:
            del self._verified[next(iter(self._verified))]
        self._verified[token] = (kid, claims)
        return claims

    async def _verify(self, token: str) -> tuple[str, dict[str, object]]:
        segment = token.partition(".")[0]
        if (kid := self._headers.get(segment)) is None:
            kid = self._accepted_header(token)
            if len(self._headers) >= HEADERS_KEPT:
                del self._headers[next(iter(self._headers))]
            self._headers[segment] = kid
        key = await self.keys.key(kid)
        if key is None:
            raise TokenRejected("token signed by an unknown or retired key")
        try:
            claims: dict[str, object] = jwt.decode(
                token,
                key,
                algorithms=[ALGORITHM],
                audience=self.audience,
                issuer=self.issuer,
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
        return kid, claims

    def _accepted_header(self, token: str) -> str:
        """The key id the token's header names, if the header is acceptable."""
        try:
            header = jwt.get_unverified_header(token)
        except jwt.PyJWTError as exc:
            raise TokenRejected(f"token is malformed: {exc}") from exc
        # Decided before any key is looked at: `none`, or HS256 keyed with a public key
        # (algorithm confusion), never reaches a signature check.
        # Reasons name no value from the token: they label a metric and reach logs.
        if header.get("alg") != ALGORITHM:
            raise TokenRejected(f"token algorithm is not accepted ({ALGORITHM} only)")
        if header.get("typ") != TOKEN_TYPES[self.kind]:
            other = next((k for k, t in TOKEN_TYPES.items() if t == header.get("typ")), None)
            raise TokenRejected(
                f"{_A[other]} token is not {_A[self.kind]} token"
                if other
                else f"token is not {_A[self.kind]} token"
            )
        kid = header.get("kid")
        if not isinstance(kid, str) or not kid:
            raise TokenRejected("token names no key (kid)")
        return kid

    async def aclose(self) -> None:
        await self.keys.aclose()


@dataclass(frozen=True)
class Tokens:
    """A service's two verifiers, on `app.state.tokens`."""

    login: TokenVerifier
    admission: TokenVerifier

    @classmethod
    def from_settings(cls, settings: CommonSettings) -> "Tokens":
        return cls(
            TokenVerifier.from_settings(settings, "login"),
            TokenVerifier.from_settings(settings, "admission"),
        )

    async def principal(self, token: str, *, remember: bool = True) -> Principal:
        claims = await self.login.claims(token, remember=remember)
        roles = claims.get("roles", [])
        return Principal(
            user_id=str(claims["sub"]),
            email=str(claims.get("email", "")),
            roles=tuple(str(r) for r in roles) if isinstance(roles, list) else (),
        )

    async def admission_for(self, token: str, user_id: str, event_id: str) -> Admission:
        """The admission, if the token is genuine, unexpired, and for this user and this sale."""
        claims = await self.admission.claims(token)
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

    async def aclose(self) -> None:
        await self.login.aclose()
        await self.admission.aclose()


def jwks_router(settings: CommonSettings, kind: TokenKindName) -> APIRouter:
    """`GET /.well-known/jwks.json`: the public halves of this signer's `kind` keys. A signer
    without its keys refuses to start."""
    keys = settings.signing_keys(kind)
    if not keys:
        raise InsecureSettings(
            f"this service signs {kind} tokens: set TICKETING_{kind.upper()}_SIGNING_KEYS"
        )
    document = jwks(public_keys(keys))
    router = APIRouter(tags=["keys"])

    @router.get(JWKS_PATH, summary=f"The public keys that verify {kind} tokens")
    async def published_keys() -> dict[str, list[dict[str, str]]]:
        return document

    return router
