"""ASGI apps served for real by uvicorn on free loopback ports, inside the test's event loop."""

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import uvicorn
from starlette.types import ASGIApp
from ticketing.__main__ import SERVER_OPTIONS
from ticketing_dev.ports import free_port


@asynccontextmanager
async def serving(app: ASGIApp) -> AsyncIterator[str]:
    """The app's base URL once its lifespan has run and it listens, served as `python -m
    ticketing` serves it; stopped on exit."""
    port = free_port()
    config = uvicorn.Config(
        app,
        host="127.0.0.1",
        port=port,
        lifespan="on",
        **SERVER_OPTIONS,  # type: ignore[arg-type]
        # A browser may keep a socket open past the test; shutdown must not wait for it forever.
        timeout_graceful_shutdown=5,
    )
    server = uvicorn.Server(config)
    task = asyncio.create_task(server.serve())
    while not server.started:
        if task.done():
            task.result()
            raise RuntimeError("uvicorn stopped before it started")
        await asyncio.sleep(0.02)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        await task
