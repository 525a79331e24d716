"""After a run, ask MySQL, Redis and Kafka what happened: seats sold twice, reservations lost,
retries and dead letters. These figures decide whether a sale passed, whatever the crowd saw."""

import asyncio
import json
import time
from collections import Counter
from datetime import UTC, datetime, timedelta

from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine
from ticketing.common.redis_client import RedisClient
from ticketing.common.redis_keys import SaleKeys

from loadtest.crowd.recorder import SeenReservation
from loadtest.report.record import Integrity, KafkaFigures

SOLD_PREFIX = "sold:"


async def wait_settled(engine: AsyncEngine, event_id: str, seconds: float) -> int:
    """Wait until no reservation of the sale is PENDING, for `seconds` at most (the holds must
    have expired by then); returns how many are still PENDING."""
    deadline = time.monotonic() + seconds
    while True:
        async with engine.connect() as conn:
            pending = await conn.scalar(
                text(
                    "SELECT COUNT(*) FROM reservations WHERE event_id = :e AND status = 'PENDING'"
                ),
                {"e": event_id},
            )
        if not pending or time.monotonic() >= deadline:
            return int(pending or 0)
        await asyncio.sleep(1)


async def check_integrity(
    engine: AsyncEngine,
    redis: RedisClient,
    key_prefix: str,
    event_id: str,
    venue_seats: int,
    seen: dict[str, SeenReservation],
    settle_seconds: float,
) -> Integrity:
    """`settle_seconds`: how long after its expiry a PENDING reservation counts as lost."""
    async with engine.connect() as conn:
        reservations = (
            await conn.execute(
                text(
                    "SELECT id, seat_ids, status, expires_at FROM reservations WHERE event_id = :e"
                ),
                {"e": event_id},
            )
        ).all()
        tickets = (
            await conn.execute(
                text("SELECT seat_id, reservation_id FROM tickets WHERE event_id = :e"),
                {"e": event_id},
            )
        ).all()
    status_of = {row.id: row.status for row in reservations}
    seats_of = {row.id: _seat_list(row.seat_ids) for row in reservations}
    ticket_of = {row.seat_id: row.reservation_id for row in tickets}

    confirmed = {rid for rid, status in status_of.items() if status == "CONFIRMED"}
    confirmed |= {rid for rid, r in seen.items() if r.status == "CONFIRMED"}
    claims = Counter(
        seat
        for rid in confirmed
        for seat in seats_of.get(rid, seen[rid].seat_ids if rid in seen else [])
    )
    redis_states = {
        _text(k): _text(v)
        for k, v in (await redis.hgetall(SaleKeys(key_prefix, event_id).seats)).items()
    }
    sold_elsewhere = sum(
        1
        for seat, state in redis_states.items()
        if state.startswith(SOLD_PREFIX)
        and seat in ticket_of
        and ticket_of[seat] != state.removeprefix(SOLD_PREFIX)
    )
    oversold = (
        sum(n - 1 for n in claims.values() if n > 1)
        + max(0, len(tickets) - venue_seats)
        + sold_elsewhere
    )

    stale_before = datetime.now(UTC).replace(tzinfo=None) - timedelta(seconds=settle_seconds)
    stuck = sum(
        1 for row in reservations if row.status == "PENDING" and row.expires_at < stale_before
    )
    missing = sum(1 for rid in seen if rid not in status_of)
    without_ticket = sum(
        1
        for rid in confirmed
        if rid in seats_of
        for seat in seats_of[rid]
        if ticket_of.get(seat) != rid
    )
    return Integrity(
        tickets=len(tickets),
        oversold=oversold,
        lost_reservations=stuck + missing,
        confirmed_without_ticket=without_ticket,
        expired_reservations=sum(1 for status in status_of.values() if status == "EXPIRED"),
    )


def _seat_list(value: str | list[str]) -> list[str]:
    return list(json.loads(value)) if isinstance(value, str) else list(value)


def _text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value


async def kafka_figures(bootstrap: str, topic_prefix: str) -> KafkaFigures:
    """Messages written to the retry ladder's topics and to the dead-letter topics."""
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        names = [n for n in await admin.list_topics() if n.startswith(topic_prefix)]
        wanted = [n for n in names if _is_retry(n, topic_prefix) or n.endswith(".dlq")]
        described = await admin.describe_topics(wanted) if wanted else []
    finally:
        await admin.close()
    partitions = [
        TopicPartition(topic["topic"], part["partition"])
        for topic in described
        for part in topic["partitions"]
    ]
    if not partitions:
        return KafkaFigures()
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False)
    await consumer.start()
    try:
        starts = await consumer.beginning_offsets(partitions)
        ends = await consumer.end_offsets(partitions)
    finally:
        await consumer.stop()
    counts = {tp: ends[tp] - starts[tp] for tp in partitions}
    return KafkaFigures(
        retries=sum(n for tp, n in counts.items() if _is_retry(tp.topic, topic_prefix)),
        dead_letters=sum(n for tp, n in counts.items() if tp.topic.endswith(".dlq")),
    )


def _is_retry(topic: str, prefix: str) -> bool:
    return topic.removeprefix(prefix).startswith("retry.")
