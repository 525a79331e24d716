"""A sale on the local platform: the platform started and the scenario's sale opened on it,
and, once a crowd has played it, the databases' account of it.

The load runner and the tests share it, whatever crowd they send (the asyncio crowd, Locust).
"""

import asyncio
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from datetime import UTC, datetime, timedelta

import httpx
from sqlalchemy.ext.asyncio import create_async_engine
from ticketing.common.redis_client import connect_redis
from ticketing.common.sale_config import Phase, SaleConfig, write_sale_config
from ticketing.common.settings import CommonSettings
from ticketing.common.tokens import Principal, issue_access_token

from loadtest.crowd.client import Call, SaleApi
from loadtest.crowd.recorder import SeenReservation
from loadtest.integrity import check_integrity, wait_settled
from loadtest.platform import Platform, PlatformNotReady, start_platform
from loadtest.report.record import Integrity
from loadtest.scenarios import Scenario

# After the crowd, the sweeper needs a few ticks to expire the last holds.
SETTLE_GRACE_SECONDS = 15
MAX_SEATS_PER_ROW = 50

Progress = Callable[[str], None]


def venue_shape(seats: int) -> tuple[int, int]:
    """Rows and seats per row that give exactly `seats`."""
    per_row = next(d for d in range(min(seats, MAX_SEATS_PER_ROW), 0, -1) if seats % d == 0)
    return seats // per_row, per_row


async def _admin(http: httpx.AsyncClient, call: Call) -> None:
    reply = await http.request(call.method, call.url, json=call.json, headers=call.headers)
    if reply.status_code >= 300:
        raise PlatformNotReady(
            f"{call.method} {call.url} answered {reply.status_code}: {reply.text[:300]}"
        )


async def open_sale(
    platform: Platform, scenario: Scenario, settings: CommonSettings, http: httpx.AsyncClient
) -> None:
    """The venue, the event and its seats through the services; the sale's config into Redis."""
    api = SaleApi(platform.urls, scenario.event_id)
    admin = issue_access_token(
        settings, Principal("load-admin", "admin@load.example.org", ("admin",))
    )
    now = datetime.now(UTC)
    opens, closes = now - timedelta(minutes=1), now + timedelta(hours=1)
    venue = f"lt-{platform.run_id}"
    rows, per_row = venue_shape(scenario.seats)
    await _admin(http, api.put_venue(admin, venue, rows, per_row))
    await _admin(http, api.put_event(admin, venue, opens.isoformat(), closes.isoformat()))
    await _admin(http, api.load_inventory(admin))
    config = SaleConfig(
        event_id=scenario.event_id,
        tps=scenario.tps,
        max_active=scenario.max_active,
        session_ttl_seconds=scenario.session_ttl_seconds,
        hold_ttl_seconds=scenario.hold_ttl_seconds,
        opens_at=opens,
        closes_at=closes,
        pre_queue_minutes=0,
        phase=Phase.ON_SALE,
    )
    redis = connect_redis(platform.redis_settings)
    try:
        await write_sale_config(redis, platform.key_prefix, config)
    finally:
        await redis.aclose()


@asynccontextmanager
async def sale_on(
    platform: Platform, scenario: Scenario, progress: Progress
) -> AsyncIterator[None]:
    """The platform up with the scenario's sale open; stopped on leaving, whatever happens."""
    try:
        progress(f"starting the platform under {platform.run_dir}")
        await start_platform(platform, scenario)
        progress(f"services ready: {', '.join(f'{n}:{p}' for n, p in platform.ports.items())}")
        async with httpx.AsyncClient(timeout=30) as http:
            await open_sale(platform, scenario, CommonSettings(), http)
        progress(
            f"sale {scenario.event_id} open: {scenario.seats} seats, {scenario.users} people, {scenario.tps:g}/s"
        )
        yield
    finally:
        await asyncio.to_thread(platform.stop)


async def audit(
    platform: Platform, scenario: Scenario, seen: dict[str, SeenReservation]
) -> Integrity:
    """Once the crowd is done: wait until no reservation of the sale is PENDING (or until the
    holds must have expired), then what MySQL and Redis say of the sale. `seen`: the
    reservations the crowd was given, by id."""
    engine = create_async_engine(platform.database_url)
    redis = connect_redis(platform.redis_settings)
    try:
        await wait_settled(
            engine, scenario.event_id, scenario.hold_ttl_seconds + SETTLE_GRACE_SECONDS
        )
        return await check_integrity(
            engine, redis, platform.key_prefix, scenario.event_id, scenario.seats, seen,
            settle_seconds=SETTLE_GRACE_SECONDS,
        )  # fmt: skip
    finally:
        await redis.aclose()
        await engine.dispose()
