"""Background tasks a service runs beside its HTTP server (consumers, relays, sweepers),
started and stopped with its lifespan, with a readiness check that fails if one has died and,
for each `Loop`, a heartbeat `/healthz` checks (ticketing.common.liveness)."""

import asyncio
import contextvars
import logging
from collections.abc import AsyncIterator, Collection, Coroutine
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

from ticketing.common import liveness
from ticketing.common.http import ReadinessCheck
from ticketing.common.liveness import Heartbeats

log = logging.getLogger(__name__)

# How long a stopping service waits for its cancelled tasks, per round.
STOP_GRACE_SECONDS = 5.0


class BackgroundTaskDied(RuntimeError):
    """A task that should run for the process's whole life has stopped."""


@dataclass(frozen=True)
class Loop:
    """A background loop and its liveness period: it promises to finish a round (and call
    `liveness.beat()`) at least this often, or `/healthz` fails."""

    job: Coroutine[Any, Any, None]
    period_seconds: float


@asynccontextmanager
async def background(
    heartbeats: Heartbeats | None = None, /, **jobs: Coroutine[Any, Any, None] | Loop
) -> AsyncIterator[ReadinessCheck]:
    """Run each named coroutine as a task; cancel and await them all on exit. A `Loop`'s
    heartbeat is registered in `heartbeats` (the app's, which `/healthz` reads)."""
    tasks = {}
    for name, job in jobs.items():
        context = contextvars.copy_context()
        if isinstance(job, Loop):
            if heartbeats is not None:
                context.run(liveness.current, heartbeats.add(name, job.period_seconds))
            job = job.job
        tasks[name] = asyncio.create_task(job, name=name, context=context)

    async def all_running() -> object:
        dead = [name for name, task in tasks.items() if task.done()]
        if dead:
            raise BackgroundTaskDied(f"stopped: {', '.join(dead)}")
        return sorted(tasks)

    try:
        yield all_running
    finally:
        await stop_tasks(tasks.values())


async def stop_tasks(
    tasks: Collection[asyncio.Task[Any]], grace_seconds: float = STOP_GRACE_SECONDS
) -> None:
    """Cancel the tasks and wait for them to end, for at most `grace_seconds`; cancel the ones
    still running once more and wait again; leave any left after that behind, logged.

    Python 3.11's `wait_for`, which redis-py runs every command through, drops a cancellation
    that arrives as the command completes, so a worker loop can run on after one cancel (seen:
    a service's shutdown waiting for ever on its admission worker). The second round ends it;
    giving up after that keeps a stuck task from holding the whole process.
    """
    pending = set(tasks)
    for _ in range(2):
        if not pending:
            return
        for task in pending:
            task.cancel()
        _, pending = await asyncio.wait(pending, timeout=grace_seconds)
    if pending:
        names = sorted(task.get_name() for task in pending)
        log.error("tasks did not stop when cancelled; left behind", extra={"tasks": names})
