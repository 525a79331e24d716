"""Where a service's CPU goes: seconds per route and per background loop, counted as it runs.

With `TICKETING_CPU_ACCOUNTING=true` every asyncio task of the process is created through a
task factory that times each of the task's steps with the thread's CPU clock and adds the
seconds to the task's part: its route (`GET /events/{event_id}/seats`, set by the chassis
once the request is routed) or, for a background task, its coroutine's name
(`AdmissionWorker.run`). What no task ran (the server's parsing and writing in protocol
callbacks, the event loop itself) is the process's CPU (`process_cpu_seconds_total`, from
prometheus_client) minus the parts'. The parts are served on `/metrics` as
`ticketing_cpu_seconds_total{part=...}`; a load run reads both before and after the crowd.

Off by default: timing every step costs about two microseconds a step.
"""

import asyncio
import time
from collections import defaultdict
from collections.abc import Coroutine, Generator, Iterable
from contextvars import Context
from typing import Any

from prometheus_client.core import CounterMetricFamily
from prometheus_client.registry import REGISTRY, Collector

_thread_time = time.thread_time

# Seconds of CPU by part, for the whole process's life.
SPENT: defaultdict[str, float] = defaultdict(float)


class _Account:
    """What one part of the work has spent: a request's or loop's task and the tasks it made."""

    __slots__ = ("part", "seconds")

    def __init__(self, part: str) -> None:
        self.part = part
        self.seconds = 0.0

    def spent(self, seconds: float) -> None:
        self.seconds += seconds
        SPENT[self.part] += seconds

    def relabel(self, part: str) -> None:
        """Move what was spent so far, and what is spent from now on, to `part`."""
        if part != self.part:
            SPENT[self.part] -= self.seconds
            SPENT[part] += self.seconds
            self.part = part


class _Metered(Coroutine[Any, Any, Any]):
    """A task's coroutine, each step timed on the thread's CPU clock and charged to `account`."""

    __slots__ = ("_coro", "account")

    def __init__(self, coro: Coroutine[Any, Any, Any], account: _Account) -> None:
        self._coro = coro
        self.account = account

    def send(self, value: Any) -> Any:
        started = _thread_time()
        try:
            return self._coro.send(value)
        finally:
            self.account.spent(_thread_time() - started)

    def throw(self, *args: Any) -> Any:
        started = _thread_time()
        try:
            return self._coro.throw(*args)
        finally:
            self.account.spent(_thread_time() - started)

    def close(self) -> None:
        self._coro.close()

    def __await__(self) -> Generator[Any, None, Any]:
        return self._coro.__await__()


def _metered_coro(loop: asyncio.AbstractEventLoop | None = None) -> "_Metered | None":
    """The running task's metered coroutine, if any (`loop` given: also when the loop is not
    running, as when asyncio.run finishes its async generators after the main task)."""
    task = asyncio.current_task(loop)
    coro = task.get_coro() if task is not None else None
    return coro if isinstance(coro, _Metered) else None


def _factory(
    loop: asyncio.AbstractEventLoop,
    coro: Coroutine[Any, Any, Any],
    context: Context | None = None,
    **kwargs: Any,
) -> asyncio.Task[Any]:
    # A task made by a request or loop works for it (a join batch, a Redis read shared by
    # callers): it is charged to its creator. A task made outside any (uvicorn's per-request
    # task, a loop started by the lifespan) is a part of its own, named after its coroutine.
    creator = _metered_coro(loop)
    account = (
        creator.account
        if creator is not None
        else _Account(getattr(coro, "__qualname__", type(coro).__name__))
    )
    return asyncio.Task(_Metered(coro, account), loop=loop, context=context, **kwargs)


def start_accounting() -> None:
    """Time every task created on the running loop from now on."""
    asyncio.get_running_loop().set_task_factory(_factory)  # type: ignore[arg-type]


def name_current_task(part: str) -> None:
    """Charge the running task, from its start, and the tasks it made, to `part` (a route,
    once the request is routed)."""
    if (coro := _metered_coro()) is not None:
        coro.account.relabel(part)


class _CpuCollector(Collector):
    def collect(self) -> Iterable[CounterMetricFamily]:
        parts = CounterMetricFamily(
            "ticketing_cpu_seconds",
            "CPU seconds spent by the process's asyncio tasks, by route or background loop.",
            labels=["part"],
        )
        for part, seconds in sorted(SPENT.items()):
            parts.add_metric([part], seconds)
        yield parts


REGISTRY.register(_CpuCollector())
