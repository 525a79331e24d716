"""Background tasks a service runs beside its HTTP server (consumers, relays, sweepers),
started and stopped with its lifespan, with a readiness check that fails if one has died."""

import asyncio
import contextlib
from collections.abc import AsyncIterator, Coroutine
from contextlib import asynccontextmanager
from typing import Any

from ticketing.common.http import ReadinessCheck


class BackgroundTaskDied(RuntimeError):
    """A task that should run for the process's whole life has stopped."""


@asynccontextmanager
async def background(**jobs: Coroutine[Any, Any, None]) -> AsyncIterator[ReadinessCheck]:
    """Run each named coroutine as a task; cancel and await them all on exit."""
    tasks = {name: asyncio.create_task(job, name=name) for name, job in jobs.items()}

    async def all_running() -> object:
        dead = [name for name, task in tasks.items() if task.done()]
        if dead:
            raise BackgroundTaskDied(f"stopped: {', '.join(dead)}")
        return sorted(tasks)

    try:
        yield all_running
    finally:
        for task in tasks.values():
            task.cancel()
        for task in tasks.values():
            with contextlib.suppress(asyncio.CancelledError):
                await task
