"""A verifier that fetches its signer's key set (JWKS) over HTTP, from a real server: tokens that
arrive while the first fetch is still in flight wait for it and verify, none is refused."""

import asyncio
import socket
from collections.abc import AsyncIterator

import pytest
import uvicorn
from fastapi import FastAPI
from ticketing.common.settings import CommonSettings
from ticketing.common.tokens import (
    JWKS_PATH,
    Principal,
    PublishedKeys,
    TokenVerifier,
    issue_access_token,
    jwks_router,
)

CROWD = 50


@pytest.fixture
async def jwks_url(settings: CommonSettings) -> AsyncIterator[str]:
    app = FastAPI()
    app.include_router(jwks_router(settings, "login"))
    # Listening before the server starts: the first requests wait in the socket's backlog.
    listening = socket.create_server(("127.0.0.1", 0))
    port = listening.getsockname()[1]
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning"))
    serving = asyncio.create_task(server.serve(sockets=[listening]))
    try:
        yield f"http://127.0.0.1:{port}{JWKS_PATH}"
    finally:
        server.should_exit = True
        await serving
        listening.close()


async def test_tokens_arriving_during_the_first_key_fetch_all_verify(
    settings: CommonSettings, jwks_url: str
) -> None:
    verifier = TokenVerifier(
        "login", PublishedKeys(jwks_url, max_age=300), settings.jwt_audience, settings.jwt_issuer
    )
    tokens = [
        issue_access_token(settings, Principal(f"user-{n}", f"user-{n}@example.com", ()))
        for n in range(CROWD)
    ]
    try:
        outcomes = await asyncio.gather(
            *(verifier.claims(token) for token in tokens), return_exceptions=True
        )
    finally:
        await verifier.aclose()

    refused = [repr(o) for o in outcomes if isinstance(o, BaseException)]
    assert refused == []
    assert {o["sub"] for o in outcomes if isinstance(o, dict)} == {
        f"user-{n}" for n in range(CROWD)
    }
