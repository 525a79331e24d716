"""Password hashing with argon2, off the event loop: one hash costs tens of milliseconds of CPU."""

import asyncio

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

_hasher = PasswordHasher()
# Verified against when the email is unknown, so a wrong email costs as long as a wrong password.
_DECOY_HASH = _hasher.hash("decoy password never matches")


async def hash_password(password: str) -> str:
    return await asyncio.to_thread(_hasher.hash, password)


async def password_matches(password_hash: str | None, password: str) -> bool:
    try:
        return await asyncio.to_thread(_hasher.verify, password_hash or _DECOY_HASH, password)
    except (VerificationError, InvalidHashError):
        return False
