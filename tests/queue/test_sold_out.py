"""Sold out: admission stops, the line becomes a waiting list, returned seats become offers."""

import redis.asyncio as aioredis
from ticketing.queue.admission import AdmissionWorker
from ticketing.queue.store import SaleQueue

from .factories import admit_until, join_many, publish_sale


async def test_sold_out_is_declared_and_admission_stops(
    queue: SaleQueue, worker: AdmissionWorker, redis_client: aioredis.Redis
) -> None:
    sale = await publish_sale(redis_client, queue, tps=1000)
    await redis_client.hset(queue.keys.seats, mapping={"A1": "sold:r1", "A2": "held:r2"})
    await join_many(queue, sale, 3)
    await worker.tick(queue.event_id)
    assert not (await queue.state()).sold_out, "a held seat may still come back"

    await redis_client.hset(queue.keys.seats, "A2", "sold:r2")
    await worker.tick(queue.event_id)
    state = await queue.state()
    assert state.sold_out
    assert state.active == 0
    for _ in range(5):
        await worker.tick(queue.event_id)
    assert (await queue.state()).waiting == 3 - state.admitted_total


async def test_returned_seat_is_offered_to_the_head_of_the_waiting_list(
    queue: SaleQueue, worker: AdmissionWorker, redis_client: aioredis.Redis
) -> None:
    sale = await publish_sale(redis_client, queue, tps=1000)
    await redis_client.hset(queue.keys.seats, mapping={"A1": "sold:r1", "A2": "sold:r2"})
    await worker.tick(queue.event_id)
    first, second, _ = await join_many(queue, sale, 3)
    await worker.tick(queue.event_id)
    assert await redis_client.zcard(queue.keys.active) == 0

    await redis_client.hset(queue.keys.seats, "A1", "free")
    await admit_until(worker, lambda: redis_client.zcard(queue.keys.active), 1)
    for _ in range(5):
        await worker.tick(queue.event_id)
    assert await redis_client.zrange(queue.keys.active, 0, -1) == [first.encode()]
    expires = await redis_client.zscore(queue.keys.active, first)
    now, _ = await redis_client.time()
    assert expires is not None and expires - now <= worker.settings.queue_offer_ttl_seconds + 1
    assert await redis_client.zscore(queue.keys.waiting, second) is not None
