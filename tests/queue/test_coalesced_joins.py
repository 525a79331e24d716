"""Joins coalesced into one Redis round trip: each caller still gets their own answer."""

import asyncio
from collections.abc import Sequence

import pytest
import redis.asyncio as aioredis
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import ResponseError
from ticketing.common.coalesce import Coalescer
from ticketing.common.ratelimit import RateRule
from ticketing.common.sale_config import SaleConfig, delete_sale_config, write_sale_config
from ticketing.queue.hub import Hub, SaleView
from ticketing.queue.joins import Joins
from ticketing.queue.settings import QueueSettings
from ticketing.queue.store import Place, PlaceState, SaleQueue, Throttled
from ticketing_dev.ports import free_port

from .factories import make_sale, publish_sale

GENEROUS = RateRule("joins", 1000, 10.0)


@pytest.fixture
def joins(redis_client: aioredis.Redis, queue_settings: QueueSettings) -> Joins:
    return Joins(Hub(redis_client, queue_settings))


@pytest.fixture
async def sale(
    joins: Joins, queue: SaleQueue, redis_client: aioredis.Redis
) -> tuple[SaleView, SaleConfig]:
    """A configured sale, as the join path sees it."""
    await publish_sale(redis_client, queue)
    seen = await joins.sale(queue.event_id)
    assert seen is not None
    return seen


async def test_concurrent_joins_get_their_own_places_in_the_order_they_came(
    joins: Joins,
    sale: tuple[SaleView, SaleConfig],
    queue: SaleQueue,
    redis_client: aioredis.Redis,
) -> None:
    users = [f"user-{n:02d}" for n in range(40)]

    places = await asyncio.gather(*(joins.join(*sale, user, GENEROUS) for user in users))

    tickets = [place.ticket for place in places if isinstance(place, Place)]
    assert tickets == sorted(tickets)
    assert len(set(tickets)) == len(users)
    assert await redis_client.zcard(queue.keys.waiting) == len(users)


async def test_the_same_user_twice_in_one_batch_keeps_one_place(
    joins: Joins,
    sale: tuple[SaleView, SaleConfig],
    queue: SaleQueue,
    redis_client: aioredis.Redis,
) -> None:

    places = await asyncio.gather(
        *(joins.join(*sale, user, GENEROUS) for user in ["alice", "bob", "alice", "alice"])
    )

    assert places[0] == places[2] == places[3] != places[1]
    assert await redis_client.zcard(queue.keys.waiting) == 2


async def test_joins_over_the_rate_limit_in_one_batch_are_refused_and_do_not_join(
    joins: Joins,
    sale: tuple[SaleView, SaleConfig],
    queue: SaleQueue,
    redis_client: aioredis.Redis,
) -> None:
    rule = RateRule("joins", 2, 10.0)

    outcomes = await asyncio.gather(
        *(joins.join(*sale, user, rule) for user in ["carl", "carl", "dina", "carl", "carl"])
    )

    refused = [o for o in outcomes if isinstance(o, Throttled)]
    assert len(refused) == 2
    assert all(1 <= o.wait_seconds <= 10 for o in refused)
    assert {o.state for o in outcomes if isinstance(o, Place)} == {PlaceState.WAITING}
    assert await redis_client.zcard(queue.keys.waiting) == 2


async def test_a_redis_error_reaches_every_caller_of_the_batch(
    queue: SaleQueue, redis_client: aioredis.Redis
) -> None:
    # A line key of the wrong type: the script fails inside Redis for the whole batch.
    await redis_client.set(queue.keys.waiting, "not a sorted set")
    coalescer = Coalescer(
        lambda users: queue.join_many(users, make_sale(), GENEROUS), max_batch=256
    )

    outcomes = await asyncio.gather(
        *(coalescer.submit(f"user-{n}") for n in range(10)), return_exceptions=True
    )

    assert all(isinstance(outcome, ResponseError) for outcome in outcomes)


async def test_an_unreachable_redis_fails_every_caller_instead_of_hanging() -> None:
    # Nothing listens on this port: the chassis answers this error with a 503.
    client = aioredis.Redis(port=free_port(), socket_connect_timeout=1)
    queue = SaleQueue(client, "unreachable", "spring-concert")
    coalescer = Coalescer(
        lambda users: queue.join_many(users, make_sale(), GENEROUS), max_batch=256
    )
    try:
        async with asyncio.timeout(10):
            outcomes = await asyncio.gather(
                *(coalescer.submit(f"user-{n}") for n in range(5)), return_exceptions=True
            )
    finally:
        await client.aclose()

    assert all(isinstance(outcome, RedisConnectionError) for outcome in outcomes)


async def test_batches_stay_within_their_size_and_answer_each_item() -> None:
    batches: list[int] = []

    async def double(items: Sequence[int]) -> list[int]:
        batches.append(len(items))
        await asyncio.sleep(0)
        return [item * 2 for item in items]

    coalescer = Coalescer(double, max_batch=4)

    results = await asyncio.gather(*(coalescer.submit(n) for n in range(10)))

    assert results == [n * 2 for n in range(10)]
    assert sum(batches) == 10
    assert max(batches) <= 4
    assert len(batches) < 10


async def test_a_caller_who_gives_up_does_not_disturb_the_others() -> None:
    started = asyncio.Event()
    release = asyncio.Event()

    async def slow_echo(items: Sequence[str]) -> list[str]:
        started.set()
        await release.wait()
        return list(items)

    coalescer = Coalescer(slow_echo, max_batch=16)
    leaving = asyncio.ensure_future(coalescer.submit("leaves"))
    staying = asyncio.ensure_future(coalescer.submit("stays"))
    await started.wait()
    leaving.cancel()
    release.set()

    assert await staying == "stays"
    assert leaving.cancelled()


async def test_an_unknown_sale_is_refused_then_seen_at_once_when_configured(
    joins: Joins, queue: SaleQueue, redis_client: aioredis.Redis
) -> None:
    assert await joins.sale(queue.event_id) is None

    await publish_sale(redis_client, queue)

    assert await joins.sale(queue.event_id) is not None


async def test_a_removed_sale_is_refused_within_one_push_interval(
    joins: Joins, queue: SaleQueue, redis_client: aioredis.Redis, queue_settings: QueueSettings
) -> None:
    await publish_sale(redis_client, queue)
    assert await joins.sale(queue.event_id) is not None
    assert await joins.sale(queue.event_id) is not None

    await delete_sale_config(redis_client, queue.keys.prefix, queue.event_id)
    await asyncio.sleep(queue_settings.queue_push_interval_seconds)

    assert await joins.sale(queue.event_id) is None


async def test_concurrent_joins_after_a_change_all_see_the_new_configuration(
    joins: Joins, queue: SaleQueue, redis_client: aioredis.Redis, queue_settings: QueueSettings
) -> None:
    sale = await publish_sale(redis_client, queue)
    assert await joins.sale(queue.event_id) is not None
    await write_sale_config(
        redis_client, queue.keys.prefix, sale.model_copy(update={"message": "Doors at 7"})
    )
    await asyncio.sleep(queue_settings.queue_push_interval_seconds)

    seen = await asyncio.gather(*(joins.sale(queue.event_id) for _ in range(20)))

    assert {config.message for _, config in filter(None, seen)} == {"Doors at 7"}
    assert all(seen)


async def _config_reads(redis_client: aioredis.Redis) -> int:
    stats = await redis_client.info("commandstats")
    return int(stats.get("cmdstat_hgetall", {}).get("calls", 0))


async def test_the_joins_that_meet_a_new_sale_together_share_one_read_of_it(
    joins: Joins, queue: SaleQueue, redis_client: aioredis.Redis
) -> None:
    await publish_sale(redis_client, queue)
    before = await _config_reads(redis_client)

    seen = await asyncio.gather(*(joins.sale(queue.event_id) for _ in range(50)))

    assert all(seen)
    assert await _config_reads(redis_client) - before == 1


async def test_a_join_that_gives_up_does_not_cancel_the_read_others_wait_for(
    joins: Joins, queue: SaleQueue, redis_client: aioredis.Redis
) -> None:
    await publish_sale(redis_client, queue)
    leaving = asyncio.ensure_future(joins.sale(queue.event_id))
    staying = asyncio.ensure_future(joins.sale(queue.event_id))
    await asyncio.sleep(0)

    leaving.cancel()

    assert await staying is not None
    assert leaving.cancelled()
