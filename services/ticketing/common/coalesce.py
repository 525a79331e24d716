"""Coalescing: concurrent callers' items go to a backing store as one batch, one round trip.

While a batch is in flight, new callers wait in the next one, so under load each round trip
carries everyone who arrived during the previous one, and an idle caller goes at once.
"""

import asyncio
from collections.abc import Awaitable, Callable, Sequence
from typing import Generic, TypeVar

Item = TypeVar("Item")
Result = TypeVar("Result")


class Coalescer(Generic[Item, Result]):
    """Runs `run` on batches of submitted items: one batch in flight at a time, at most
    `max_batch` items each. `run` returns one result per item, in order; an exception it raises
    reaches every caller of that batch."""

    def __init__(
        self, run: Callable[[Sequence[Item]], Awaitable[Sequence[Result]]], max_batch: int
    ) -> None:
        self._run = run
        self._max_batch = max_batch
        self._waiting: list[tuple[Item, asyncio.Future[Result]]] = []
        self._flusher: asyncio.Task[None] | None = None

    async def submit(self, item: Item) -> Result:
        future: asyncio.Future[Result] = asyncio.get_running_loop().create_future()
        self._waiting.append((item, future))
        if self._flusher is None:
            self._flusher = asyncio.create_task(self._flush())
        return await future

    async def _flush(self) -> None:
        try:
            # Yield once first: callers arriving in this same loop iteration join the batch.
            await asyncio.sleep(0)
            while self._waiting:
                batch = self._waiting[: self._max_batch]
                del self._waiting[: self._max_batch]
                await self._settle(batch)
        finally:
            self._flusher = None
            # Cancelled (the loop is shutting down): nobody may be left waiting for ever.
            for _, future in self._waiting:
                future.cancel()
            self._waiting.clear()

    async def _settle(self, batch: list[tuple[Item, asyncio.Future[Result]]]) -> None:
        try:
            results = await self._run([item for item, _ in batch])
            if len(results) != len(batch):
                raise RuntimeError(f"{len(results)} results for a batch of {len(batch)}")
        except Exception as exc:  # noqa: BLE001 - not handled here: every caller gets it
            for _, future in batch:
                if not future.done():
                    future.set_exception(exc)
            return
        except BaseException:
            for _, future in batch:
                future.cancel()
            raise
        for (_, future), result in zip(batch, results, strict=True):
            # A caller that gave up (its client went away) has a cancelled future: skip it.
            if not future.done():
                future.set_result(result)
