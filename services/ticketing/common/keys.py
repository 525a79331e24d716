"""Ed25519 signing keys: read from settings, named by their RFC 7638 thumbprint, published as a
JWKS (RFC 7517) and read back from one.

A private key is written as its 32 bytes in hex (`openssl rand -hex 32`), so that the chart can
generate one with `sha256sum` and an operator can bring one without a PEM file.
"""

import base64
import hashlib
import json
import re
from collections.abc import Iterable, Mapping
from functools import lru_cache

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

ALGORITHM = "EdDSA"
_HEX_KEY = re.compile(r"[0-9a-fA-F]{64}")


class InvalidKey(ValueError):
    """A configured private key or a published public key cannot be read."""


def _b64url(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def _raw(public: Ed25519PublicKey) -> bytes:
    return public.public_bytes(Encoding.Raw, PublicFormat.Raw)


@lru_cache(maxsize=32)
def private_keys(value: str) -> tuple[Ed25519PrivateKey, ...]:
    """Comma-separated hex keys, in their order (the first one signs)."""
    keys = []
    for part in (p.strip() for p in value.split(",")):
        if not part:
            continue
        if not _HEX_KEY.fullmatch(part):
            raise InvalidKey("a signing key is 64 hex characters (openssl rand -hex 32)")
        keys.append(Ed25519PrivateKey.from_private_bytes(bytes.fromhex(part)))
    return tuple(keys)


def key_id(public: Ed25519PublicKey) -> str:
    """The key's RFC 7638 thumbprint: the same key has the same id in every process."""
    members = {"crv": "Ed25519", "kty": "OKP", "x": _b64url(_raw(public))}
    canonical = json.dumps(members, separators=(",", ":"), sort_keys=True).encode()
    return _b64url(hashlib.sha256(canonical).digest())


def public_keys(keys: Iterable[Ed25519PrivateKey]) -> dict[str, Ed25519PublicKey]:
    """Key id -> public key, of each private key."""
    return {key_id(public): public for public in (key.public_key() for key in keys)}


def jwks(keys: Mapping[str, Ed25519PublicKey]) -> dict[str, list[dict[str, str]]]:
    return {
        "keys": [
            {
                "kty": "OKP",
                "crv": "Ed25519",
                "x": _b64url(_raw(public)),
                "kid": kid,
                "alg": ALGORITHM,
                "use": "sig",
            }
            for kid, public in keys.items()
        ]
    }


def read_jwks(document: object) -> dict[str, Ed25519PublicKey]:
    """The Ed25519 signing keys of a JWKS, by key id; each id is checked against its key, so a
    published set cannot give one key another key's name."""
    entries = document.get("keys") if isinstance(document, dict) else None
    if not isinstance(entries, list):
        raise InvalidKey("a JWKS is an object with a list of keys")
    keys: dict[str, Ed25519PublicKey] = {}
    for entry in entries:
        if not isinstance(entry, dict) or (entry.get("kty"), entry.get("crv")) != (
            "OKP",
            "Ed25519",
        ):
            continue
        x = str(entry.get("x", ""))
        try:
            public = Ed25519PublicKey.from_public_bytes(
                base64.urlsafe_b64decode(x + "=" * (-len(x) % 4))
            )
        except ValueError as exc:
            raise InvalidKey(f"published key {entry.get('kid')!r} is not an Ed25519 key") from exc
        kid = key_id(public)
        if entry.get("kid") != kid:
            raise InvalidKey(f"published key id {entry.get('kid')!r} does not match its key")
        keys[kid] = public
    return keys
