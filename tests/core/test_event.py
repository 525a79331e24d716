"""The event service: admins write events, everyone reads them."""

from urllib.parse import quote

import httpx
import pytest
from ticketing.common.settings import CommonSettings
from ticketing.event.app import create_app

from tests.core.conftest import Serve
from tests.core.factories import admin_token, bearer, event_body, user_token


@pytest.fixture
async def events(
    settings: CommonSettings, migrated_database: str, serve: Serve
) -> httpx.AsyncClient:
    return await serve(create_app(settings))


@pytest.fixture
def admin(settings: CommonSettings) -> dict[str, str]:
    return bearer(admin_token(settings))


async def test_admin_creates_an_event_that_everyone_can_read(
    events: httpx.AsyncClient, admin: dict[str, str]
) -> None:
    created = await events.post("/events", json=event_body("hall-1"), headers=admin)
    assert created.status_code == 201
    event_id = created.json()["id"]
    assert event_id.startswith("spring-concert-")
    read = await events.get(f"/events/{event_id}")
    assert read.status_code == 200
    assert read.json()["venue_id"] == "hall-1"
    assert read.json()["status"] == "published"
    listed = await events.get("/events")
    assert [event["id"] for event in listed.json()] == [event_id]


async def test_event_created_with_a_taken_id_is_a_conflict(
    events: httpx.AsyncClient, admin: dict[str, str]
) -> None:
    body = event_body("hall-1", id="spring-concert")
    assert (await events.post("/events", json=body, headers=admin)).status_code == 201
    again = await events.post("/events", json=body, headers=admin)
    assert again.status_code == 409


async def test_put_event_creates_once_then_returns_the_same_event(
    events: httpx.AsyncClient, admin: dict[str, str]
) -> None:
    body = event_body("hall-1")
    first = await events.put("/events/spring-concert", json=body, headers=admin)
    second = await events.put("/events/spring-concert", json=body, headers=admin)
    assert (first.status_code, second.status_code) == (201, 200)
    assert first.json() == second.json()
    assert len((await events.get("/events")).json()) == 1


async def test_put_event_updates_the_title_but_refuses_another_venue(
    events: httpx.AsyncClient, admin: dict[str, str]
) -> None:
    await events.put("/events/gala", json=event_body("hall-1"), headers=admin)
    renamed = await events.put(
        "/events/gala", json=event_body("hall-1", title="Gala"), headers=admin
    )
    assert renamed.json()["title"] == "Gala"
    moved = await events.put("/events/gala", json=event_body("hall-2"), headers=admin)
    assert moved.status_code == 409
    assert moved.json()["detail"] == "an event's venue cannot change"


async def test_non_admin_writing_an_event_is_forbidden(
    events: httpx.AsyncClient, settings: CommonSettings
) -> None:
    fan = bearer(user_token(settings))
    posted = await events.post("/events", json=event_body("hall-1"), headers=fan)
    put = await events.put("/events/mine", json=event_body("hall-1"), headers=fan)
    assert (posted.status_code, put.status_code) == (403, 403)
    assert posted.json()["detail"] == "admin role required"
    anonymous = await events.post("/events", json=event_body("hall-1"))
    assert anonymous.status_code == 401


async def test_unknown_event_is_not_found(events: httpx.AsyncClient) -> None:
    response = await events.get("/events/no-such-event")
    assert response.status_code == 404
    assert response.json()["detail"] == "event not found"


@pytest.mark.parametrize("event_id", ["Spring\x00Concert", "UPPER", "a{b}", "a" * 64])
async def test_an_event_id_off_its_pattern_is_refused_naming_the_path(
    events: httpx.AsyncClient, event_id: str
) -> None:
    response = await events.get(f"/events/{quote(event_id, safe='')}")

    assert response.status_code == 422
    assert response.json()["detail"][0]["loc"] == ["path", "event_id"]


async def test_sale_window_that_closes_before_it_opens_is_rejected_with_the_reason(
    events: httpx.AsyncClient, admin: dict[str, str]
) -> None:
    body = event_body("hall-1", opens_at="2026-12-01T14:00:00Z", closes_at="2026-12-01T12:00:00Z")
    response = await events.post("/events", json=body, headers=admin)
    assert response.status_code == 422
    assert "closes_at must be after opens_at" in response.text


@pytest.mark.parametrize(
    "overrides",
    [
        pytest.param({"title": ""}, id="empty-title"),
        pytest.param({"opens_at": "tomorrow"}, id="not-a-time"),
        pytest.param({"opens_at": "2026-12-01T12:00:00"}, id="no-time-zone"),
        pytest.param({"venue_id": "Hall {1}"}, id="venue-id-not-a-slug"),
        pytest.param({"id": "UPPER_case"}, id="id-not-a-slug"),
        pytest.param({"status": "sold-ish"}, id="unknown-status"),
        pytest.param({"title": "Spring\x00Concert"}, id="nul-in-title"),
        pytest.param({"title": "Spring Concert\x1b[2J"}, id="escape-in-title"),
    ],
)
async def test_malformed_event_is_rejected(
    events: httpx.AsyncClient, admin: dict[str, str], overrides: dict[str, object]
) -> None:
    body = {**event_body("hall-1"), **overrides}
    response = await events.post("/events", json=body, headers=admin)
    assert response.status_code == 422
    assert response.json()["detail"]


async def test_sale_window_is_returned_in_utc_as_sent(
    events: httpx.AsyncClient, admin: dict[str, str]
) -> None:
    body = event_body(
        "hall-1", opens_at="2026-12-01T13:00:00+01:00", closes_at="2026-12-01T14:00:00Z"
    )
    created = await events.put("/events/tz", json=body, headers=admin)
    read = (await events.get("/events/tz")).json()
    assert created.json()["opens_at"] == read["opens_at"] == "2026-12-01T12:00:00Z"
