"""The seat service: venues and seat maps, and a sale's seat inventory in Redis."""

import asyncio

import httpx
import pytest
import redis.asyncio as aioredis
from ticketing.common.redis_keys import SaleKeys
from ticketing.common.settings import CommonSettings
from ticketing.event.app import create_app as create_event_app
from ticketing.seat.app import create_app as create_seat_app
from ticketing.seat.settings import SeatSettings
from ticketing_dev.ports import free_port

from tests.core.conftest import Serve
from tests.core.factories import admin_token, bearer, event_body, user_token, venue_body


@pytest.fixture
def admin(settings: CommonSettings) -> dict[str, str]:
    return bearer(admin_token(settings))


@pytest.fixture
async def events(
    settings: CommonSettings, migrated_database: str, serve: Serve
) -> httpx.AsyncClient:
    return await serve(create_event_app(settings))


@pytest.fixture
async def seats(
    settings: CommonSettings, events: httpx.AsyncClient, serve: Serve
) -> httpx.AsyncClient:
    """The seat service, asking the in-process event service which venue an event is in."""
    return await serve(create_seat_app(SeatSettings(**settings.model_dump()), events._transport))


async def _sale(
    events: httpx.AsyncClient, seats: httpx.AsyncClient, admin: dict[str, str], rows: int = 4
) -> None:
    """Venue `hall` of `rows` x 5 seats and event `gig` in it, inventory not loaded yet."""
    venue = await seats.put("/venues/hall", json=venue_body(rows=rows), headers=admin)
    assert venue.status_code == 201, venue.text
    event = await events.put("/events/gig", json=event_body("hall"), headers=admin)
    assert event.status_code == 201, event.text


async def test_venue_map_numbers_rows_across_sections_with_their_price_tier(
    seats: httpx.AsyncClient, admin: dict[str, str]
) -> None:
    created = await seats.post("/venues", json=venue_body(rows=4, seats_per_row=5), headers=admin)
    assert created.status_code == 201
    venue = (await seats.get(f"/venues/{created.json()['id']}")).json()
    assert venue["seat_count"] == 20
    ids = [seat["id"] for seat in venue["seats"]]
    assert ids[:6] == ["r1-s1", "r1-s2", "r1-s3", "r1-s4", "r1-s5", "r2-s1"]
    assert ids[-1] == "r4-s5"
    by_id = {seat["id"]: seat for seat in venue["seats"]}
    assert (by_id["r2-s5"]["section"], by_id["r2-s5"]["price_tier"]) == ("stalls", "front")
    assert (by_id["r3-s1"]["section"], by_id["r3-s1"]["price_tier"]) == ("circle", "back")


async def test_put_venue_is_idempotent_but_refuses_a_changed_layout(
    seats: httpx.AsyncClient, admin: dict[str, str]
) -> None:
    first = await seats.put("/venues/hall", json=venue_body(), headers=admin)
    again = await seats.put("/venues/hall", json=venue_body(), headers=admin)
    assert (first.status_code, again.status_code) == (201, 200)
    changed = await seats.put("/venues/hall", json=venue_body(rows=6), headers=admin)
    assert changed.status_code == 409
    assert changed.json()["detail"] == "venue exists with a different layout"


@pytest.mark.parametrize(
    ("overrides", "reason"),
    [
        pytest.param(
            {"sections": [{"name": "a", "rows": 1, "seats_per_row": 1, "price_tier": "vip"}]},
            "unknown price tier",
            id="unknown-tier",
        ),
        pytest.param(
            {"sections": [{"name": "a", "rows": 0, "seats_per_row": 1, "price_tier": "front"}]},
            "greater than or equal to 1",
            id="no-rows",
        ),
        pytest.param({"sections": []}, "at least 1", id="no-sections"),
        pytest.param(
            {"price_tiers": [{"name": "front", "price_cents": -1}]}, "greater than", id="negative"
        ),
        pytest.param({"name": "Hall\x00"}, "should match pattern", id="nul-in-name"),
        pytest.param(
            {"sections": [{"name": "a\x85", "rows": 1, "seats_per_row": 1, "price_tier": "front"}]},
            "should match pattern",
            id="control-in-section",
        ),
    ],
)
async def test_malformed_venue_is_rejected_with_the_reason(
    seats: httpx.AsyncClient, admin: dict[str, str], overrides: dict[str, object], reason: str
) -> None:
    response = await seats.post("/venues", json=venue_body(**overrides), headers=admin)
    assert response.status_code == 422
    assert reason in response.text


async def test_unknown_venue_is_not_found(seats: httpx.AsyncClient) -> None:
    response = await seats.get("/venues/nowhere")
    assert response.status_code == 404
    assert response.json()["detail"] == "venue not found"


async def test_loaded_inventory_shows_every_seat_free(
    events: httpx.AsyncClient, seats: httpx.AsyncClient, admin: dict[str, str]
) -> None:
    await _sale(events, seats, admin, rows=40)
    loaded = await seats.post("/events/gig/inventory", headers=admin)
    assert loaded.status_code == 200
    assert loaded.json() == {"event_id": "gig", "venue_id": "hall", "seats": 200, "added": 200}
    status = (await seats.get("/events/gig/seats")).json()
    assert status["counts"] == {"free": 200, "held": 0, "sold": 0, "unknown": 0}
    assert {seat["state"] for seat in status["seats"]} == {"free"}
    assert len(status["seats"]) == 200


async def test_loading_inventory_again_adds_nothing_and_keeps_held_and_sold_seats(
    events: httpx.AsyncClient,
    seats: httpx.AsyncClient,
    admin: dict[str, str],
    settings: CommonSettings,
    redis_client: aioredis.Redis,
) -> None:
    await _sale(events, seats, admin)
    await seats.post("/events/gig/inventory", headers=admin)
    key = SaleKeys(settings.redis_key_prefix, "gig").seats
    await redis_client.hset(key, mapping={"r1-s1": "held:res-1", "r1-s2": "sold:res-2"})
    again = await seats.post("/events/gig/inventory", headers=admin)
    assert again.json()["added"] == 0
    assert await redis_client.hget(key, "r1-s1") == b"held:res-1"
    status = (await seats.get("/events/gig/seats")).json()
    assert status["counts"] == {"free": 18, "held": 1, "sold": 1, "unknown": 0}
    states = {seat["id"]: seat["state"] for seat in status["seats"]}
    assert (states["r1-s1"], states["r1-s2"], states["r1-s3"]) == ("held", "sold", "free")
    assert "res-1" not in str(status)


async def test_inventory_of_an_unknown_event_or_venue_is_not_found(
    events: httpx.AsyncClient, seats: httpx.AsyncClient, admin: dict[str, str]
) -> None:
    unknown_event = await seats.post("/events/nope/inventory", headers=admin)
    assert (unknown_event.status_code, unknown_event.json()["detail"]) == (404, "event not found")
    await events.put("/events/homeless", json=event_body("no-such-hall"), headers=admin)
    unknown_venue = await seats.post("/events/homeless/inventory", headers=admin)
    assert unknown_venue.status_code == 404
    assert "no-such-hall" in unknown_venue.json()["detail"]
    not_loaded = await seats.get("/events/homeless/seats")
    assert not_loaded.status_code == 404


async def test_non_admin_writing_venues_or_inventory_is_forbidden(
    events: httpx.AsyncClient,
    seats: httpx.AsyncClient,
    admin: dict[str, str],
    settings: CommonSettings,
) -> None:
    await _sale(events, seats, admin)
    fan = bearer(user_token(settings))
    assert (await seats.post("/venues", json=venue_body(), headers=fan)).status_code == 403
    assert (await seats.post("/events/gig/inventory", headers=fan)).status_code == 403
    assert (await seats.get("/events/gig/seats")).status_code == 404


async def test_inventory_load_is_503_when_the_event_service_is_unreachable(
    settings: CommonSettings, migrated_database: str, serve: Serve, admin: dict[str, str]
) -> None:
    elsewhere = SeatSettings(
        **settings.model_dump(), event_service_url=f"http://127.0.0.1:{free_port()}"
    )
    seats = await serve(create_seat_app(elsewhere))
    response = await seats.post("/events/gig/inventory", headers=admin)
    assert response.status_code == 503
    assert response.json()["detail"] == "event service unavailable"


async def test_readyz_names_redis_when_it_is_unreachable(
    settings: CommonSettings, migrated_database: str, serve: Serve
) -> None:
    ready = await serve(create_seat_app(SeatSettings(**settings.model_dump())))
    assert (await ready.get("/readyz")).status_code == 200
    closed = SeatSettings(
        **{**settings.model_dump(), "redis_url": f"redis://127.0.0.1:{free_port()}/0"}
    )
    broken = await serve(create_seat_app(closed))
    response = await broken.get("/readyz")
    assert response.status_code == 503
    assert list(response.json()["failed"]) == ["redis"]


async def _hgetall_calls(redis_client: aioredis.Redis) -> int:
    stats = await redis_client.info("commandstats")
    return int(stats.get("cmdstat_hgetall", {}).get("calls", 0))


async def test_many_buyers_looking_at_the_map_share_one_read_and_see_a_hold_within_its_age(
    events: httpx.AsyncClient,
    seats: httpx.AsyncClient,
    admin: dict[str, str],
    settings: CommonSettings,
    redis_client: aioredis.Redis,
) -> None:
    await _sale(events, seats, admin, rows=40)
    await seats.post("/events/gig/inventory", headers=admin)
    reads_before = await _hgetall_calls(redis_client)

    maps = await asyncio.gather(*(seats.get("/events/gig/seats") for _ in range(100)))

    assert {m.status_code for m in maps} == {200}
    assert len({m.content for m in maps}) == 1
    # One read of 200 seats served the hundred callers (a second if the interval ran out).
    assert await _hgetall_calls(redis_client) - reads_before <= 2
    key = SaleKeys(settings.redis_key_prefix, "gig").seats
    await redis_client.hset(key, "r1-s1", "held:res-1")
    await asyncio.sleep(SeatSettings().seat_map_max_age_seconds)
    status = (await seats.get("/events/gig/seats")).json()
    assert status["counts"]["held"] == 1


async def test_a_caller_with_the_current_map_gets_304_and_a_changed_map_in_full(
    events: httpx.AsyncClient,
    seats: httpx.AsyncClient,
    admin: dict[str, str],
    settings: CommonSettings,
    redis_client: aioredis.Redis,
) -> None:
    await _sale(events, seats, admin)
    await seats.post("/events/gig/inventory", headers=admin)
    first = await seats.get("/events/gig/seats")
    etag = first.headers["etag"]

    same = await seats.get("/events/gig/seats", headers={"If-None-Match": etag})

    assert (same.status_code, same.content, same.headers["etag"]) == (304, b"", etag)
    key = SaleKeys(settings.redis_key_prefix, "gig").seats
    await redis_client.hset(key, "r1-s1", "sold:res-2")
    await asyncio.sleep(SeatSettings().seat_map_max_age_seconds)
    changed = await seats.get("/events/gig/seats", headers={"If-None-Match": etag})
    assert changed.status_code == 200
    assert changed.headers["etag"] != etag
    assert changed.json()["counts"]["sold"] == 1


async def test_the_free_seats_view_lists_only_free_ids_and_shrinks_as_seats_are_taken(
    events: httpx.AsyncClient,
    seats: httpx.AsyncClient,
    admin: dict[str, str],
    settings: CommonSettings,
    redis_client: aioredis.Redis,
) -> None:
    await _sale(events, seats, admin)
    await seats.post("/events/gig/inventory", headers=admin)
    key = SaleKeys(settings.redis_key_prefix, "gig").seats
    await redis_client.hset(key, mapping={"r1-s1": "held:res-1", "r1-s2": "sold:res-2"})

    free = await seats.get("/events/gig/seats/free")

    body = free.json()
    assert body["counts"] == {"free": 18, "held": 1, "sold": 1, "unknown": 0}
    assert len(body["free"]) == 18
    assert {"r1-s1", "r1-s2"}.isdisjoint(body["free"]) and "r1-s3" in body["free"]
    # A few bytes a seat, against the whole map's section, row, number and price tier.
    assert len(free.content) * 3 < len((await seats.get("/events/gig/seats")).content)
    etag = free.headers["etag"]
    same = await seats.get("/events/gig/seats/free", headers={"If-None-Match": etag})
    assert same.status_code == 304
