"""One JSON decoding policy for every service: a number that is not finite (NaN, Infinity, 1e400)
or an integer outside 64 bits is a 422 naming the field, never a 500; and arbitrary JSON sent to
any route of any service never gets a 5xx or a stack trace.

The apps run in-process over ASGI with their real lifespans on the session's real servers.
"""

import json
import re
from typing import Any

import httpx
import pytest
import redis.asyncio as aioredis
from fastapi import FastAPI
from hypothesis import HealthCheck, given
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st
from ticketing.common.redis_keys import SaleKeys
from ticketing.common.settings import CommonSettings
from ticketing.common.tokens import Principal, issue_access_token, issue_admission_token

from tests.core.conftest import Serve
from tests.core.factories import bearer
from tests.core.sale_kit import seat_ids
from tests.hardening.apps import ADMIN_EMAIL, APPS, KNOWN_EVENT

STACK_TRACE = re.compile(r'Traceback \(most recent call last\)|File "[^"]+", line \d+')
ADMIN = Principal("json-admin", ADMIN_EMAIL, ("admin",))
OUT_OF_RANGE = ["NaN", "Infinity", "-Infinity", "1e400", "-1e400", "9" * 30, "1" * 5000]


def headers(settings: CommonSettings) -> dict[str, str]:
    admission, _ = issue_admission_token(settings, ADMIN.user_id, KNOWN_EVENT, 300)
    return {
        **bearer(issue_access_token(settings, ADMIN)),
        "X-Admission-Token": admission,
        "Content-Type": "application/json",
    }


@pytest.fixture
async def seats_on_sale(redis_client: aioredis.Redis, settings: CommonSettings) -> None:
    seats = SaleKeys(settings.redis_key_prefix, KNOWN_EVENT).seats
    await redis_client.hset(seats, mapping=dict.fromkeys(seat_ids(8), "free"))


@pytest.mark.parametrize("literal", OUT_OF_RANGE)
@pytest.mark.parametrize(
    ("service", "path", "body", "loc"),
    [
        ("user", "/users", '{"email": "a@example.org", "password": %s}', ["body", "password"]),
        (
            "reservation",
            f"/events/{KNOWN_EVENT}/reservations",
            '{"seat_ids": ["A-1", %s]}',
            ["body", "seat_ids", 1],
        ),
    ],
    ids=["user", "reservation"],
)
async def test_a_number_out_of_range_is_a_422_naming_the_field(
    migrated_database: str,
    serve: Serve,
    settings: CommonSettings,
    seats_on_sale: None,
    service: str,
    path: str,
    body: str,
    loc: list[object],
    literal: str,
) -> None:
    client = await serve(APPS[service](settings))

    answer = await client.post(path, content=body % literal, headers=headers(settings))

    assert answer.status_code == 422, answer.text
    [error] = answer.json()["detail"]
    # An integer too long to convert at all is named by the body it is in.
    assert error["loc"] == (["body"] if len(literal) > 4300 else loc)
    assert error["msg"] == "Input should be a finite number within 64 bits"


def json_text(fields: list[str]) -> st.SearchStrategy[str]:
    """JSON text, with the numbers Python's decoder accepts but JSON cannot carry back out, and
    objects whose keys are mostly the route's own fields, so the values reach its validation."""
    numbers = st.one_of(
        st.sampled_from(OUT_OF_RANGE[:-1]),
        st.integers().map(str),
        st.floats(allow_nan=False, allow_infinity=False).map(repr),
    )
    scalars = st.one_of(
        numbers, st.text(max_size=20).map(json.dumps), st.sampled_from(["true", "false", "null"])
    )
    keys = st.sampled_from(fields) | st.text(max_size=8) if fields else st.text(max_size=8)

    def containers(children: st.SearchStrategy[str]) -> st.SearchStrategy[str]:
        return st.lists(children, max_size=4).map(lambda items: f"[{','.join(items)}]") | (
            st.dictionaries(keys, children, max_size=4).map(
                lambda members: (
                    "{" + ",".join(f"{json.dumps(k)}:{v}" for k, v in members.items()) + "}"
                )
            )
        )

    return st.recursive(scalars, containers, max_leaves=12)


def routes(app: FastAPI) -> list[tuple[str, str, list[str]]]:
    """(method, path with ids filled in, the JSON body's field names) of each of the app's routes;
    a route that takes no body gets one anyway."""
    spec: dict[str, Any] = app.openapi()
    found = []
    for path, operations in spec["paths"].items():
        for method, operation in operations.items():
            content = operation.get("requestBody", {}).get("content", {})
            schema = content.get("application/json", {}).get("schema", {})
            if "$ref" in schema:
                schema = spec["components"]["schemas"][schema["$ref"].rsplit("/", 1)[1]]
            filled = re.sub(r"\{[^}]+\}", KNOWN_EVENT, path)
            found.append((method.upper(), filled, sorted(schema.get("properties", {}))))
    return found


@pytest.fixture(params=list(APPS))
async def service_app(
    request: pytest.FixtureRequest,
    migrated_database: str,
    serve: Serve,
    settings: CommonSettings,
    seats_on_sale: None,
) -> tuple[httpx.AsyncClient, list[tuple[str, str, list[str]]]]:
    """One service's app, served, with its routes."""
    app = APPS[request.param](settings)
    return await serve(app), routes(app)


@pytest.mark.slow
@hypothesis_settings(
    max_examples=150,
    deadline=None,
    database=None,
    derandomize=True,  # the same bodies every run: a CI failure replays locally
    suppress_health_check=list(HealthCheck),
)
@given(data=st.data())
async def test_arbitrary_json_to_any_route_never_gets_a_5xx(
    data: st.DataObject,
    service_app: tuple[httpx.AsyncClient, list[tuple[str, str, list[str]]]],
    settings: CommonSettings,
) -> None:
    client, its_routes = service_app
    method, path, fields = data.draw(st.sampled_from(its_routes), label="route")
    body = data.draw(json_text(fields), label="body")

    answer = await client.request(method, path, content=body, headers=headers(settings))

    request = f"{method} {path} {body[:200]}: {answer.status_code}"
    assert answer.status_code < 500, f"{request}\n{answer.text[:500]}"
    assert not STACK_TRACE.search(answer.text), f"{request} shows a stack trace"


async def test_the_policy_lets_ordinary_numbers_and_other_bodies_through(
    migrated_database: str, serve: Serve, settings: CommonSettings
) -> None:
    client = await serve(APPS["user"](settings))

    made = await client.post(
        "/users", json={"email": "b@example.org", "password": "long enough 1.5e3"}
    )
    not_json = await client.post(
        "/users", content=b"\xff not json", headers={"Content-Type": "application/json"}
    )

    assert made.status_code == 201, made.text
    assert not_json.status_code in (400, 422)
