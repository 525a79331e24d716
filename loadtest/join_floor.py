"""The least a join does beyond the bare endpoint, measured in `bench_join`'s own process in the
same run: checking a new user's login token. Every join by a user a process has not seen checks
an Ed25519 signature, and the bare endpoint checks none.

`token_check_us` is `TokenVerifier.claims` on distinct fresh tokens (PyJWT's reading of the token
and the claims' checks included), `signature_us` the Ed25519 verification alone
(`cryptography`), both as CPU microseconds a token.
"""

import asyncio
import time
from dataclasses import dataclass

from jwt.utils import base64url_decode
from ticketing.common.settings import CommonSettings
from ticketing.common.tokens import TokenVerifier

from loadtest.bench_common import Sample, load_average, median
from loadtest.queue_target import mint_tokens

TOKENS = 3_000


@dataclass(frozen=True)
class TokenFloor:
    token_check: Sample  # CPU µs a fresh token, TokenVerifier.claims
    signature: Sample  # CPU µs a fresh token, the Ed25519 verification alone


def measure_token_floor() -> TokenFloor:
    settings = CommonSettings()
    tokens = [token for _, token in mint_tokens(TOKENS)]
    verifier = TokenVerifier.from_settings(settings, "login")
    key = settings.signing_keys("login")[0].public_key()

    async def check_all() -> None:
        for token in tokens:
            await verifier.claims(token, remember=False)

    started = time.process_time()
    asyncio.run(check_all())
    token_check = (time.process_time() - started) / len(tokens) * 1e6

    signed = [_signed_parts(token) for token in tokens]
    started = time.process_time()
    for signature, message in signed:
        key.verify(signature, message)
    signature_us = (time.process_time() - started) / len(tokens) * 1e6
    load = load_average()
    return TokenFloor(Sample(token_check, load), Sample(signature_us, load))


def _signed_parts(token: str) -> tuple[bytes, bytes]:
    """(signature, signed message) of a compact JWS."""
    message, _, signature = token.rpartition(".")
    return base64url_decode(signature), message.encode()


def describe_floor(floors: list[TokenFloor], bare_cpu_us: float | None) -> str:
    """The medians, and what they make the least a join can cost against the bare endpoint."""
    check = median([f.token_check for f in floors]).value
    signature = median([f.signature for f in floors]).value
    least = (
        f"; a join costs at least {(bare_cpu_us + check) / bare_cpu_us:.2f}x the bare "
        f"endpoint's CPU ({bare_cpu_us:,.0f} µs a request)"
        if bare_cpu_us
        else ""
    )
    return (
        f"a new user's login token: {check:,.0f} µs of CPU to check, {signature:,.0f} µs of it "
        f"the Ed25519 signature (medians of {len(floors)}){least}"
    )
