"""Every Redis script, MULTI and pipeline of the platform runs on a real Redis Cluster.

A cluster refuses a script or a transaction whose keys hash to more than one slot (CROSSSLOT),
so each store's every call is made here once, against three primaries: a key that lost its
sale's (or topic's, or consumer group's) hash tag fails its call. The sale scan of the admission
workers must find sales on every primary.
"""

import asyncio
from collections.abc import AsyncIterator

import pytest
from ticketing.common.dedup import ProcessedIds
from ticketing.common.ratelimit import RateRule
from ticketing.common.redis_client import RedisClient, connect_redis
from ticketing.common.redis_keys import SaleKeys
from ticketing.common.sale_config import delete_sale_config, read_sale_config, write_sale_config
from ticketing.common.settings import CommonSettings
from ticketing.queue.admission import AdmissionWorker
from ticketing.queue.store import Place, PlaceState, SaleQueue
from ticketing.reservation.holds import SeatHolds, SeatsTaken, TooManyHolds
from ticketing.retry.queue import DelayQueue, Parked
from ticketing.seat.inventory import load_free_seats, seat_states
from ticketing_dev.redis_cluster import RedisClusterServers
from ticketing_operator.figures import read_queue, read_retry_backlog, read_seats

from tests.queue.factories import make_queue_settings, make_sale

SEATS = ["r1-s1", "r1-s2", "r1-s3", "r1-s4"]
HOLDS = RateRule("holds", limit=10, window_seconds=60)


@pytest.fixture
def cluster_settings(
    redis_cluster: RedisClusterServers, settings: CommonSettings
) -> CommonSettings:
    return settings.model_copy(update={"redis_url": redis_cluster.url, "redis_cluster": True})


@pytest.fixture
async def cluster(cluster_settings: CommonSettings) -> AsyncIterator[RedisClient]:
    client = connect_redis(cluster_settings)
    try:
        yield client
    finally:
        await client.aclose()


async def test_the_waiting_room_runs_on_one_slot_per_sale(
    cluster: RedisClient, cluster_settings: CommonSettings
) -> None:
    prefix = cluster_settings.redis_key_prefix
    sale = make_sale("cluster-sale", tps=1000, max_active=2, pre_queue_minutes=0)
    await write_sale_config(cluster, prefix, sale)
    assert await read_sale_config(cluster, prefix, sale.event_id) == sale
    queue = SaleQueue(cluster, prefix, sale.event_id)
    await load_free_seats(cluster, queue.keys, SEATS)

    first = await queue.join("user-1", sale)
    rule = RateRule("joins", limit=5, window_seconds=10)
    others = await queue.join_many(["user-2", "user-3"], sale, rule)
    assert [first, *others] == [
        Place(PlaceState.WAITING, first.ticket),
        Place(PlaceState.WAITING, (first.ticket or 0) + 1),
        Place(PlaceState.WAITING, (first.ticket or 0) + 2),
    ]
    await queue.touch(["user-1", "user-2"])
    await queue.mark_away(["user-3"], 3600)
    assert await queue.sweep(grace_seconds=30) == 1
    assert await queue.seal_and_assign(sale)
    assert (await queue.fairness_record()).seed is not None
    admitted: list[str] = []
    for _ in range(100):  # the shared token bucket fills at the sale's TPS from its first call
        admitted += await queue.admit(
            tps=1000, max_active=2, session_ttl_seconds=60, away_after_seconds=60, open_=True
        )
        if len(admitted) == 2:
            break
        await asyncio.sleep(0.01)
    assert admitted == ["user-1", "user-2"]
    assert await queue.admission_token(cluster_settings, "user-1")
    state = await queue.state()
    assert (state.admitted_total, state.waiting, state.active) == (2, 0, 2)
    assert (await queue.seat_counts()).free == len(SEATS)
    assert await queue.declare_sold_out() and await queue.is_sold_out()
    figures = await read_queue(cluster, queue.keys)
    assert (figures.waiting, figures.active) == (0, 0)
    await delete_sale_config(cluster, prefix, sale.event_id)


async def test_seat_holds_sell_and_release_on_one_slot_per_sale(
    cluster: RedisClient, cluster_settings: CommonSettings
) -> None:
    prefix = cluster_settings.redis_key_prefix
    keys = SaleKeys(prefix, "cluster-holds")
    assert await load_free_seats(cluster, keys, SEATS) == len(SEATS)
    holds = SeatHolds(cluster, prefix)
    await holds.hold(
        "cluster-holds", "res-1", "alice", SEATS[:2], 60_000, max_seats_per_buyer=4, rate=HOLDS
    )
    with pytest.raises(SeatsTaken):
        await holds.hold(
            "cluster-holds", "res-2", "bob", SEATS[1:3], 60_000, max_seats_per_buyer=4, rate=HOLDS
        )
    assert await holds.sell("cluster-holds", "res-1", "alice", SEATS[:2]) == []
    await holds.hold(
        "cluster-holds", "res-3", "bob", SEATS[2:3], 60_000, max_seats_per_buyer=4, rate=HOLDS
    )
    assert await holds.release("cluster-holds", "res-3", "bob", SEATS[2:3]) == 1
    await holds.hold(
        "cluster-holds", "res-4", "carol", SEATS[3:], 1, max_seats_per_buyer=4, rate=HOLDS
    )
    for _ in range(200):
        if expired := await holds.expired("cluster-holds", 10):
            break
        await asyncio.sleep(0.01)
    assert [hold.reservation_id for hold in expired] == ["res-4"]
    assert await seat_states(cluster, keys) == {
        "r1-s1": "sold",
        "r1-s2": "sold",
        "r1-s3": "free",
        "r1-s4": "held",
    }
    figures = await read_seats(cluster, keys)
    assert (figures.free, figures.held, figures.sold) == (1, 1, 2)
    # Alice's one hold so far was counted on the sale's slot: a second is over a limit of one.
    with pytest.raises(TooManyHolds):
        await holds.hold(
            "cluster-holds",
            "res-5",
            "alice",
            SEATS[2:3],
            60_000,
            max_seats_per_buyer=4,
            rate=RateRule("holds", limit=1, window_seconds=10),
        )


async def test_the_retry_queue_and_dedup_run_on_one_slot_per_topic_and_group(
    cluster: RedisClient, cluster_settings: CommonSettings
) -> None:
    prefix = cluster_settings.redis_key_prefix
    delays = DelayQueue(cluster, prefix)
    topics = [f"reservation.topic-{n}" for n in range(6)]
    parked = [Parked(f"m-{topic}", topic, b"k", b"v", [], due_at_ms=0) for topic in topics]
    assert await delays.park(parked) == len(topics)
    assert await read_retry_backlog(cluster, prefix) == len(topics)
    claimed = await delays.claim(topics[0], now_ms=1, lease_ms=60_000, limit=10)
    assert [message.member for message in claimed] == [parked[0].member]
    await delays.ack(topics[0], [parked[0].member])
    backlog = await delays.backlog(now_ms=1)
    assert sum(b.total for b in backlog.values()) == len(topics) - 1

    processed = ProcessedIds(cluster, prefix, "cluster-group", window_seconds=60)
    assert not await processed.seen("message-1")
    await processed.mark("message-1")
    assert await processed.seen("message-1")


async def test_admission_workers_find_the_sales_of_every_primary(
    cluster: RedisClient, cluster_settings: CommonSettings, redis_cluster: RedisClusterServers
) -> None:
    prefix = cluster_settings.redis_key_prefix
    sales: list[str] = []
    owners: set[int] = set()
    while len(owners) < 3:
        event_id = f"sale-{len(sales)}"
        await write_sale_config(cluster, prefix, make_sale(event_id))
        owners.add(redis_cluster.primary_of(SaleKeys(prefix, event_id).config).port)
        sales.append(event_id)
    worker = AdmissionWorker(cluster, make_queue_settings(cluster_settings))
    assert await worker.sales() == sorted(sales)
