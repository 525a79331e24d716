"""A verifier remembers the headers it accepted (every token one key signs has the same header),
and still checks every token in full: one with a known header and a forged, tampered or garbled
body is refused, and so is a known header whose key was retired since."""

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from ticketing.common.settings import CommonSettings
from ticketing.common.tokens import TokenRejected, TokenVerifier

from tests.core.factories import forge, signing_kid, user_token
from tests.hardening.forgery import access_claims, tampered


class RetirableKeys:
    """The platform's own keys, of which one can be retired."""

    def __init__(self, settings: CommonSettings) -> None:
        self.keys = {signing_kid(settings): settings.signing_keys("login")[0].public_key()}

    async def key(self, kid: str) -> Ed25519PublicKey | None:
        return self.keys.get(kid)

    async def aclose(self) -> None:
        return None


@pytest.fixture
def keys(settings: CommonSettings) -> RetirableKeys:
    return RetirableKeys(settings)


@pytest.fixture
async def verifier(settings: CommonSettings, keys: RetirableKeys) -> TokenVerifier:
    verifier = TokenVerifier("login", keys, settings.jwt_audience, settings.jwt_issuer)
    # A genuine token first: its header is now a known one.
    assert (await verifier.claims(user_token(settings), remember=False))["sub"]
    return verifier


async def test_a_known_header_on_a_forged_or_tampered_body_is_refused(
    settings: CommonSettings, verifier: TokenVerifier
) -> None:
    genuine = user_token(settings)
    header = genuine.split(".")[0]
    forged = forge(access_claims(settings), kid=signing_kid(settings))
    assert forged.split(".")[0] == header

    for token in (forged, tampered(genuine, settings)):
        with pytest.raises(TokenRejected, match="token signature is invalid"):
            await verifier.claims(token)
    with pytest.raises(TokenRejected, match="token is malformed"):
        await verifier.claims(f"{header}.!!!!.{genuine.split('.')[2]}")
    assert (await verifier.claims(genuine))["sub"]


async def test_a_known_header_whose_key_was_retired_is_refused(
    settings: CommonSettings, verifier: TokenVerifier, keys: RetirableKeys
) -> None:
    keys.keys.clear()

    with pytest.raises(TokenRejected, match="unknown or retired key"):
        await verifier.claims(user_token(settings))
