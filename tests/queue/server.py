"""The queue service run for real by uvicorn on a free loopback port, inside the test's loop."""

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from ticketing.common.settings import CommonSettings
from ticketing.common.tokens import Principal, issue_access_token
from ticketing.queue.app import create_app
from ticketing.queue.settings import QueueSettings

from tests.serving import serving


@asynccontextmanager
async def running_queue_service(settings: QueueSettings) -> AsyncIterator[str]:
    """The service's base URL while it runs, its admission worker included."""
    async with serving(create_app(settings)) as url:
        yield url


def login_token(settings: CommonSettings, user_id: str) -> str:
    return issue_access_token(settings, Principal(user_id, f"{user_id}@example.org", ()))
