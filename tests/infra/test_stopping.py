"""A stopping service ends its background tasks, even one that dropped a cancellation, and does
not hang on one that will not end."""

import asyncio
import contextlib
import logging

import pytest
from ticketing.common.background import stop_tasks


async def wait_forever() -> None:
    await asyncio.Event().wait()


async def drops_first_cancellation() -> None:
    # As a loop does when Python 3.11's wait_for swallows the cancel: it carries on.
    with contextlib.suppress(asyncio.CancelledError):
        await wait_forever()
    await wait_forever()


async def ignores_cancellation(release: asyncio.Event) -> None:
    while not release.is_set():
        with contextlib.suppress(asyncio.CancelledError):
            await release.wait()


async def test_stopping_ends_tasks_including_one_that_dropped_its_first_cancellation(
    caplog: pytest.LogCaptureFixture,
) -> None:
    tasks = [asyncio.create_task(wait_forever()), asyncio.create_task(drops_first_cancellation())]
    await asyncio.sleep(0)

    with caplog.at_level(logging.ERROR, logger="ticketing.common.background"):
        await asyncio.wait_for(stop_tasks(tasks, grace_seconds=0.2), timeout=10)

    assert all(task.cancelled() for task in tasks)
    assert caplog.records == []


async def test_stopping_leaves_a_task_that_ignores_cancellation_behind_with_an_error(
    caplog: pytest.LogCaptureFixture,
) -> None:
    release = asyncio.Event()
    stuck = asyncio.create_task(ignores_cancellation(release), name="stubborn")
    await asyncio.sleep(0)

    with caplog.at_level(logging.ERROR, logger="ticketing.common.background"):
        await asyncio.wait_for(stop_tasks([stuck], grace_seconds=0.2), timeout=10)

    assert not stuck.done()
    assert [record.tasks for record in caplog.records] == [["stubborn"]]
    release.set()
    await stuck
