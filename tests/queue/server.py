"""The queue service run for real by uvicorn on a free loopback port, inside the test's loop."""

import asyncio
import socket
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import uvicorn
from ticketing.common.settings import CommonSettings
from ticketing.common.tokens import Principal, issue_access_token
from ticketing.queue.app import create_app
from ticketing.queue.settings import QueueSettings


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


@asynccontextmanager
async def running_queue_service(settings: QueueSettings) -> AsyncIterator[str]:
    """The service's base URL while it runs, its admission worker included."""
    port = free_port()
    config = uvicorn.Config(
        create_app(settings), host="127.0.0.1", port=port, log_config=None, lifespan="on"
    )
    server = uvicorn.Server(config)
    task = asyncio.create_task(server.serve())
    while not server.started:
        if task.done():
            task.result()
        await asyncio.sleep(0.02)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        await task


def login_token(settings: CommonSettings, user_id: str) -> str:
    return issue_access_token(settings, Principal(user_id, f"{user_id}@example.org", ()))
