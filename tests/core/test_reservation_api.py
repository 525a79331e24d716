"""The reservation API over HTTP: the whole sale end to end, and every bad request's 4xx."""

import asyncio
from collections.abc import AsyncIterator

import httpx
import pytest
import redis.asyncio as aioredis
from pydantic import SecretStr
from sqlalchemy.ext.asyncio import AsyncEngine
from ticketing.common.resources import open_database
from ticketing.common.settings import CommonSettings
from ticketing.common.tokens import Principal, issue_access_token, issue_admission_token
from ticketing.payment.app import create_app as create_payment_app
from ticketing.reservation.app import create_app as create_reservation_app
from ticketing.reservation.lifecycle import Trigger
from ticketing.reservation.service import ReservationService

from tests.core.conftest import Serve
from tests.core.factories import ATTACKER_KEY, bearer
from tests.core.sale_kit import (
    count_tickets,
    eventually,
    make_sale,
    payment_settings,
    reservation_settings,
    seat_states,
)


def buyer_headers(settings: CommonSettings, user_id: str, event_id: str) -> dict[str, str]:
    """A logged-in user the waiting room admitted to `event_id`."""
    token = issue_access_token(settings, Principal(user_id, f"{user_id}@example.org", ()))
    admission, _ = issue_admission_token(settings, user_id, event_id, ttl_seconds=300)
    return {**bearer(token), "X-Admission-Token": admission}


async def test_admitted_buyer_holds_two_seats_pays_and_gets_them_sold(
    migrated_database: str, serve: Serve, settings: CommonSettings, redis_client: aioredis.Redis
) -> None:
    payments = await serve(create_payment_app(payment_settings(settings)))
    reservations = await serve(create_reservation_app(reservation_settings(settings)))
    event = await make_sale(redis_client, settings.redis_key_prefix, seats=4)
    headers = buyer_headers(settings, "alice", event)

    held = await reservations.post(
        f"/events/{event}/reservations", json={"seat_ids": ["A-1", "A-2"]}, headers=headers
    )
    assert held.status_code == 201, held.text
    reservation_id = held.json()["id"]
    assert held.json()["status"] == "PENDING"

    async def confirmed() -> bool:
        read = await reservations.get(f"/reservations/{reservation_id}", headers=headers)
        return bool(read.json()["status"] == "CONFIRMED")

    await eventually(confirmed, within=60)
    states = await seat_states(redis_client, settings.redis_key_prefix, event)
    assert states == {
        "A-1": f"sold:{reservation_id}",
        "A-2": f"sold:{reservation_id}",
        "A-3": "free",
        "A-4": "free",
    }
    async with open_database(migrated_database) as engine:
        assert await count_tickets(engine, event) == 2
    for app in (payments, reservations):
        assert (await app.get("/readyz")).status_code == 200
        assert "ticketing_messages_total" in (await app.get("/metrics")).text


@pytest.fixture
async def service(
    engine: AsyncEngine, redis_client: aioredis.Redis, settings: CommonSettings
) -> ReservationService:
    return ReservationService(engine, redis_client, reservation_settings(settings))


@pytest.fixture
async def api(
    service: ReservationService, settings: CommonSettings
) -> AsyncIterator[httpx.AsyncClient]:
    """The HTTP layer over the real service, without the Kafka side of the lifespan."""
    app = create_reservation_app(reservation_settings(settings))
    app.state.reservations = service
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app), base_url="http://reservation"
    ) as client:
        yield client


@pytest.fixture
async def event(redis_client: aioredis.Redis, settings: CommonSettings) -> str:
    return await make_sale(redis_client, settings.redis_key_prefix, seats=3)


@pytest.mark.parametrize(
    ("body", "reason"),
    [
        ({"seat_ids": []}, "at least 1 item"),
        ({"seat_ids": ["A-1", "A-2", "A-3", "A-4", "A-5"]}, "at most 4 items"),
        ({"seat_ids": ["A-1", "A-1"]}, "a seat is listed twice"),
        ({"seat_ids": "A-1"}, "valid list"),
        ({"seats": ["A-1"]}, "Field required"),
        ({"seat_ids": ["A-9"]}, "no such seats in this event: A-9"),
    ],
    ids=["empty", "five-seats", "duplicate", "not-a-list", "wrong-field", "unknown-seat"],
)
async def test_hold_refuses_a_bad_body_with_422_and_a_reason(
    api: httpx.AsyncClient, settings: CommonSettings, event: str, body: object, reason: str
) -> None:
    response = await api.post(
        f"/events/{event}/reservations", json=body, headers=buyer_headers(settings, "u1", event)
    )
    assert response.status_code == 422
    assert reason in response.text


async def test_hold_refuses_malformed_json_and_a_seat_of_another_event(
    api: httpx.AsyncClient, settings: CommonSettings, redis_client: aioredis.Redis, event: str
) -> None:
    headers = buyer_headers(settings, "u1", event)
    garbled = await api.post(
        f"/events/{event}/reservations",
        content=b"{seat_ids: [",
        headers={**headers, "Content-Type": "application/json"},
    )
    assert garbled.status_code == 422
    assert "json_invalid" in garbled.text
    await make_sale(redis_client, settings.redis_key_prefix, seats=6)  # has an A-6
    elsewhere = await api.post(
        f"/events/{event}/reservations", json={"seat_ids": ["A-6"]}, headers=headers
    )
    assert elsewhere.status_code == 422
    assert "A-6" in elsewhere.json()["detail"]


async def test_hold_of_a_taken_seat_is_409_naming_it_and_unknown_event_is_404(
    api: httpx.AsyncClient, settings: CommonSettings, event: str
) -> None:
    first = await api.post(
        f"/events/{event}/reservations",
        json={"seat_ids": ["A-2"]},
        headers=buyer_headers(settings, "u1", event),
    )
    assert first.status_code == 201
    second = await api.post(
        f"/events/{event}/reservations",
        json={"seat_ids": ["A-1", "A-2"]},
        headers=buyer_headers(settings, "u2", event),
    )
    assert second.status_code == 409
    assert second.json()["detail"] == "seats already held or sold: A-2"
    nowhere = await api.post(
        "/events/no-such-event/reservations",
        json={"seat_ids": ["A-1"]},
        headers=buyer_headers(settings, "u1", "no-such-event"),
    )
    assert nowhere.status_code == 404


def _forged(settings: CommonSettings) -> CommonSettings:
    return settings.model_copy(
        update={
            "login_signing_keys": SecretStr(ATTACKER_KEY),
            "admission_signing_keys": SecretStr(ATTACKER_KEY),
        }
    )


@pytest.mark.parametrize(
    ("case", "status", "reason"),
    [
        ("no-login", 401, "missing bearer token"),
        ("forged-login", 401, "token signed by an unknown or retired key"),
        ("expired-login", 401, "token expired"),
        ("no-admission", 403, "missing admission token"),
        ("forged-admission", 403, "token signed by an unknown or retired key"),
        ("expired-admission", 403, "token expired"),
        ("admission-for-another-sale", 403, "admission token is for another sale"),
        ("admission-of-another-user", 403, "admission token belongs to another user"),
    ],
)
async def test_hold_refuses_missing_forged_or_expired_tokens(
    api: httpx.AsyncClient,
    settings: CommonSettings,
    event: str,
    case: str,
    status: int,
    reason: str,
) -> None:
    login = issue_access_token(settings, Principal("u1", "u1@example.org", ()))
    admission, _ = issue_admission_token(settings, "u1", event, ttl_seconds=300)
    headers = {**bearer(login), "X-Admission-Token": admission}
    match case:
        case "no-login":
            del headers["Authorization"]
        case "forged-login":
            headers.update(bearer(issue_access_token(_forged(settings), Principal("u1", "", ()))))
        case "expired-login":
            stale = settings.model_copy(update={"jwt_ttl_seconds": -10})
            headers.update(bearer(issue_access_token(stale, Principal("u1", "", ()))))
        case "no-admission":
            del headers["X-Admission-Token"]
        case "forged-admission":
            headers["X-Admission-Token"] = issue_admission_token(
                _forged(settings), "u1", event, 300
            )[0]
        case "expired-admission":
            headers["X-Admission-Token"] = issue_admission_token(settings, "u1", event, -10)[0]
        case "admission-for-another-sale":
            headers["X-Admission-Token"] = issue_admission_token(settings, "u1", "other", 300)[0]
        case "admission-of-another-user":
            headers["X-Admission-Token"] = issue_admission_token(settings, "u2", event, 300)[0]

    response = await api.post(
        f"/events/{event}/reservations", json={"seat_ids": ["A-1"]}, headers=headers
    )

    assert response.status_code == status
    assert response.json()["detail"] == reason


async def test_owner_reads_and_cancels_their_reservation_and_nobody_else_can(
    api: httpx.AsyncClient,
    service: ReservationService,
    settings: CommonSettings,
    redis_client: aioredis.Redis,
    event: str,
) -> None:
    owner = buyer_headers(settings, "owner", event)
    stranger = buyer_headers(settings, "stranger", event)
    held = await api.post(
        f"/events/{event}/reservations", json={"seat_ids": ["A-1"]}, headers=owner
    )
    path = f"/reservations/{held.json()['id']}"

    assert (await api.get(path, headers=stranger)).status_code == 404
    assert (await api.delete(path, headers=stranger)).status_code == 404
    assert (await api.get(path, headers=owner)).json()["status"] == "PENDING"
    cancelled = await api.post(f"{path}/cancel", headers=owner)
    assert cancelled.status_code == 200
    assert cancelled.json()["status"] == "CANCELLED"
    assert (await api.delete(path, headers=owner)).json()["status"] == "CANCELLED"
    assert (await seat_states(redis_client, settings.redis_key_prefix, event))["A-1"] == "free"

    sold = await api.post(
        f"/events/{event}/reservations", json={"seat_ids": ["A-1"]}, headers=owner
    )
    await service.apply(sold.json()["id"], Trigger.PAID)
    refused = await api.delete(f"/reservations/{sold.json()['id']}", headers=owner)
    assert refused.status_code == 409
    assert "CONFIRMED" in refused.json()["detail"]


def reading_app(service: ReservationService, settings: CommonSettings) -> httpx.AsyncClient:
    app = create_reservation_app(reservation_settings(settings))
    app.state.reservations = service
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://reservation")


@pytest.mark.parametrize("applied_by", ["this replica", "another replica"])
async def test_a_waiting_read_is_answered_once_payment_settles_the_reservation(
    engine: AsyncEngine,
    redis_client: aioredis.Redis,
    settings: CommonSettings,
    event: str,
    applied_by: str,
) -> None:
    # The replica the buyer reads from rechecks the database every 0.2 s, or never within the
    # read's wait: then only the change it applied itself can answer the read early.
    rechecks = 0.2 if applied_by == "another replica" else 60.0
    reader = ReservationService(
        engine,
        redis_client,
        reservation_settings(settings, reservation_wait_recheck_seconds=rechecks),
    )
    other = ReservationService(engine, redis_client, reservation_settings(settings))
    owner = buyer_headers(settings, "owner", event)
    async with reading_app(reader, settings) as api:
        held = await api.post(
            f"/events/{event}/reservations", json={"seat_ids": ["A-1"]}, headers=owner
        )
        path = f"/reservations/{held.json()['id']}"
        reading = asyncio.create_task(api.get(path, params={"wait_seconds": 10}, headers=owner))
        await asyncio.sleep(0.5)
        assert not reading.done()  # still PENDING: the read waits

        await (reader if applied_by == "this replica" else other).apply(
            held.json()["id"], Trigger.PAID
        )

        # Well before the read's 10 s are up.
        answer = await asyncio.wait_for(reading, timeout=5)
    assert answer.status_code == 200
    assert answer.json()["status"] == "CONFIRMED"
    assert len(reader.changes) == 0


async def test_a_waiting_read_of_a_reservation_nobody_settles_answers_pending_when_its_wait_ends(
    api: httpx.AsyncClient, service: ReservationService, settings: CommonSettings, event: str
) -> None:
    owner = buyer_headers(settings, "owner", event)
    held = await api.post(
        f"/events/{event}/reservations", json={"seat_ids": ["A-1"]}, headers=owner
    )
    path = f"/reservations/{held.json()['id']}"

    waited = await api.get(path, params={"wait_seconds": 0.5}, headers=owner)
    cancelled = await api.post(f"{path}/cancel", headers=owner)
    settled = await api.get(path, params={"wait_seconds": 10}, headers=owner)  # at once

    assert waited.json()["status"] == "PENDING"
    assert cancelled.json()["status"] == settled.json()["status"] == "CANCELLED"
    assert len(service.changes) == 0
    stranger = buyer_headers(settings, "stranger", event)
    assert (await api.get(path, params={"wait_seconds": 1}, headers=stranger)).status_code == 404


@pytest.mark.parametrize("wait", ["-1", "10.5", "soon"])
async def test_a_wait_outside_zero_to_ten_seconds_is_a_422(
    api: httpx.AsyncClient, settings: CommonSettings, event: str, wait: str
) -> None:
    owner = buyer_headers(settings, "owner", event)
    path = f"/reservations/{'0' * 32}"

    answer = await api.get(path, params={"wait_seconds": wait}, headers=owner)

    assert answer.status_code == 422
    assert answer.json()["detail"][0]["loc"] == ["query", "wait_seconds"]


async def test_the_hold_is_counted_and_described_as_one_route_whatever_answers_it(
    api: httpx.AsyncClient, settings: CommonSettings, event: str
) -> None:
    # Well-formed holds are served outside FastAPI's dependencies; the rest by the route OpenAPI
    # describes. A client sees one route either way.
    held = await api.post(
        f"/events/{event}/reservations",
        json={"seat_ids": ["A-1"]},
        headers=buyer_headers(settings, "u1", event),
    )
    refused = await api.post(
        f"/events/{event}/reservations",
        json={"seat_ids": []},
        headers=buyer_headers(settings, "u2", event),
    )
    malformed = await api.post(
        "/events/Not_A_Slug/reservations",
        json={"seat_ids": ["A-1"]},
        headers=buyer_headers(settings, "u3", "Not_A_Slug"),
    )
    metrics = (await api.get("/metrics")).text
    schema = (await api.get("/openapi.json")).json()

    assert held.status_code == 201
    assert held.json()["seat_ids"] == ["A-1"]
    assert refused.status_code == 422
    assert refused.json()["detail"][0]["loc"] == ["body", "seat_ids"]
    assert malformed.status_code == 422
    assert malformed.json()["detail"][0]["loc"] == ["path", "event_id"]
    counted = (
        'method="POST",route="/events/{event_id}/reservations",service="reservation",status="%d"'
    )
    assert counted % 201 in metrics
    assert counted % 422 in metrics
    described = schema["paths"]["/events/{event_id}/reservations"]["post"]
    assert described["requestBody"]["content"]["application/json"]["schema"] == {
        "$ref": "#/components/schemas/ReservationRequest"
    }
    assert "201" in described["responses"]
