"""A sale's seat inventory in Redis: loaded with HSETNX, read with one HGETALL."""

from collections.abc import Iterator, Sequence
from contextlib import contextmanager

from ticketing.common.errors import TemporaryError
from ticketing.common.redis_client import REDIS_UNAVAILABLE, RedisClient
from ticketing.common.redis_keys import SaleKeys

FREE = "free"
# Bounds one pipeline's request and reply; a 100,000-seat venue loads in 20 round trips.
BATCH = 5_000


class SeatStoreUnavailable(TemporaryError):
    """Redis did not answer; the same request can succeed once it does."""


@contextmanager
def _seat_store() -> Iterator[None]:
    try:
        yield
    except REDIS_UNAVAILABLE as exc:
        raise SeatStoreUnavailable("seat store unavailable") from exc


async def load_free_seats(redis: RedisClient, keys: SaleKeys, seat_ids: Sequence[str]) -> int:
    """Add the seats the sale does not have yet as free; a held or sold seat keeps its state.

    Returns how many seats were added, so loading twice reports 0 the second time.
    """
    added = 0
    with _seat_store():
        for start in range(0, len(seat_ids), BATCH):
            async with redis.pipeline(transaction=False) as pipe:
                for seat in seat_ids[start : start + BATCH]:
                    pipe.hsetnx(keys.seats, seat, FREE)
                added += sum(await pipe.execute())
    return added


async def seat_states(redis: RedisClient, keys: SaleKeys) -> dict[str, str]:
    """Seat id -> `free`, `held`, or `sold` (the reservation id is not shown to anyone)."""
    with _seat_store():
        raw = await redis.hgetall(keys.seats)
    return {_text(seat): _text(value).partition(":")[0] for seat, value in raw.items()}


def _text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value
