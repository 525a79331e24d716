"""The signing keys, as deployed: the user and queue services run as real processes holding
their private keys, and the reservation service as one holding none, in production mode, checking
every token with the public keys it fetches from the signers' JWKS. Forged tokens are refused
with a reason; a key rotated in and out during a sale logs nobody out and voids no admission,
and a retired key stops verifying."""

import asyncio
import secrets
import time
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass

import httpx
import jwt
import pytest
import redis.asyncio as aioredis
from ticketing.common.keys import key_id, private_keys
from ticketing.common.sale_config import write_sale_config
from ticketing.common.settings import CommonSettings
from ticketing.common.tokens import JWKS_PATH, Principal, issue_access_token

from tests.core.factories import bearer, sign_up_and_log_in
from tests.core.sale_kit import make_sale
from tests.hardening.forgery import forged_access_tokens
from tests.hardening.platform import service_env
from tests.queue.factories import make_sale as make_sale_config
from tests.service_processes import ServiceProcess

pytestmark = pytest.mark.slow

# How long a verifier uses a fetched key set: short, so a retired key's end is seen in a test.
JWKS_MAX_AGE_SECONDS = 1


def kid_of(key: str) -> str:
    return key_id(private_keys(key)[0].public_key())


def kid_in(token: str) -> str:
    return str(jwt.get_unverified_header(token)["kid"])


@dataclass
class KeyPlatform:
    settings: CommonSettings
    redis: aioredis.Redis
    user: ServiceProcess
    queue: ServiceProcess
    reservation: ServiceProcess
    event_id: str

    async def rotate(self, signer: ServiceProcess, variable: str, keys: list[str]) -> None:
        """Restart a signer with a new key list, on the same port (as a rollout would)."""
        await asyncio.to_thread(signer.process.stop)
        signer.process.env = {**(signer.process.env or {}), variable: ",".join(keys)}
        await asyncio.to_thread(signer.restart)


def _production(jwks: Mapping[str, str]) -> dict[str, str]:
    return {"TICKETING_ENVIRONMENT": "production", **jwks}


@pytest.fixture
async def key_platform(
    settings: CommonSettings,
    migrated_database: str,
    redis_client: aioredis.Redis,
    tmp_path_factory: pytest.TempPathFactory,
) -> AsyncIterator[KeyPlatform]:
    logs = tmp_path_factory.mktemp("signing-keys")
    login_key, admission_key = secrets.token_hex(32), secrets.token_hex(32)
    env = service_env(settings)
    user = ServiceProcess(
        "user",
        {**env, "TICKETING_ENVIRONMENT": "production", "TICKETING_LOGIN_SIGNING_KEYS": login_key},
        logs,
    )
    queue = ServiceProcess("queue", env, logs)
    jwks = {
        "TICKETING_LOGIN_JWKS_URL": f"{user.base_url}{JWKS_PATH}",
        "TICKETING_ADMISSION_JWKS_URL": f"{queue.base_url}{JWKS_PATH}",
        "TICKETING_JWKS_MAX_AGE_SECONDS": str(JWKS_MAX_AGE_SECONDS),
    }
    user.process.env = {**(user.process.env or {}), **jwks}
    queue.process.env = {
        **(queue.process.env or {}),
        **_production(jwks),
        "TICKETING_ADMISSION_SIGNING_KEYS": admission_key,
    }
    reservation = ServiceProcess("reservation", {**env, **_production(jwks)}, logs)
    event_id = await make_sale(redis_client, settings.redis_key_prefix, seats=10)
    await write_sale_config(
        redis_client, settings.redis_key_prefix, make_sale_config(event_id, tps=50)
    )
    processes = (user, queue, reservation)
    try:
        for process in processes:
            process.start()
        for process in processes:
            await asyncio.to_thread(process.wait_ready)
        yield KeyPlatform(settings, redis_client, user, queue, reservation, event_id)
    finally:
        for process in processes:
            process.process.stop()


@dataclass
class Buyer:
    login: str
    admission: str = ""


async def log_in(platform: KeyPlatform) -> Buyer:
    async with httpx.AsyncClient(base_url=platform.user.base_url, timeout=10) as users:
        return Buyer(await sign_up_and_log_in(users))


async def admit(platform: KeyPlatform, buyer: Buyer) -> None:
    """Through the waiting room, until the queue hands over the buyer's admission token."""
    path = f"/sales/{platform.event_id}/queue"
    async with httpx.AsyncClient(base_url=platform.queue.base_url, timeout=10) as queue:
        joined = await queue.post(path, headers=bearer(buyer.login))
        assert joined.status_code == 200, joined.text
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            status = (await queue.get(path, headers=bearer(buyer.login))).json()
            if status.get("type") == "admitted":
                buyer.admission = status["token"]
                return
            await asyncio.sleep(0.1)
    raise AssertionError(f"not admitted: {status}")


async def hold(platform: KeyPlatform, buyer: Buyer, seat: str) -> httpx.Response:
    async with httpx.AsyncClient(base_url=platform.reservation.base_url, timeout=10) as api:
        return await api.post(
            f"/events/{platform.event_id}/reservations",
            json={"seat_ids": [seat]},
            headers={**bearer(buyer.login), "X-Admission-Token": buyer.admission},
        )


async def test_signers_publish_public_keys_only_and_verifiers_refuse_every_forgery(
    key_platform: KeyPlatform,
) -> None:
    login_keys = key_platform.user.process.env or {}
    signing = CommonSettings(login_signing_keys=login_keys["TICKETING_LOGIN_SIGNING_KEYS"])
    async with httpx.AsyncClient(timeout=10) as client:
        published = (await client.get(f"{key_platform.user.base_url}{JWKS_PATH}")).json()
        forged = forged_access_tokens(signing)
        refusals = {}
        for name, (token, _) in forged.items():
            response = await client.get(
                f"{key_platform.reservation.base_url}/reservations/any", headers=bearer(token)
            )
            refusals[name] = (response.status_code, response.json()["detail"])

    assert [set(key) for key in published["keys"]] == [{"kty", "crv", "x", "kid", "alg", "use"}]
    assert published["keys"][0]["kid"] == kid_of(login_keys["TICKETING_LOGIN_SIGNING_KEYS"])
    wrong = {
        name: refusal
        for name, refusal in refusals.items()
        if refusal[0] != 401 or forged[name][1] not in refusal[1]
    }
    assert not wrong
    assert len(refusals) == len(forged) >= 12


async def test_admission_checks_refuse_login_tokens_forged_and_foreign_admissions(
    key_platform: KeyPlatform,
) -> None:
    buyer = await log_in(key_platform)
    await admit(key_platform, buyer)
    # A real key of the platform, but the login one: it is not published as an admission key.
    login_key = (key_platform.user.process.env or {})["TICKETING_LOGIN_SIGNING_KEYS"]
    cases = {
        "login token as admission": buyer.login,
        "signed with the login key": issue_access_token(
            CommonSettings(login_signing_keys=login_key), Principal("x", "", ())
        ),
        "someone else's admission": await _someone_elses_admission(key_platform),
    }
    refused = {}
    for name, token in cases.items():
        response = await hold(key_platform, Buyer(buyer.login, token), "A-1")
        refused[name] = (response.status_code, response.json()["detail"])

    assert refused == {
        "login token as admission": (403, "a login token is not an admission token"),
        "signed with the login key": (403, "a login token is not an admission token"),
        "someone else's admission": (403, "admission token belongs to another user"),
    }
    assert (await hold(key_platform, buyer, "A-1")).status_code == 201


async def _someone_elses_admission(platform: KeyPlatform) -> str:
    other = await log_in(platform)
    await admit(platform, other)
    return other.admission


async def test_rotating_both_keys_during_a_sale_logs_nobody_out_and_voids_no_admission(
    key_platform: KeyPlatform,
) -> None:
    env = key_platform.user.process.env or {}
    old_login = env["TICKETING_LOGIN_SIGNING_KEYS"]
    old_admission = (key_platform.queue.process.env or {})["TICKETING_ADMISSION_SIGNING_KEYS"]
    new_login, new_admission = secrets.token_hex(32), secrets.token_hex(32)
    early, waiting = await log_in(key_platform), await log_in(key_platform)
    await admit(key_platform, early)
    first = await hold(key_platform, early, "A-1")
    assert first.status_code == 201
    reservation = f"/reservations/{first.json()['id']}"

    # Rotate in: each signer signs with its new key and still publishes the old one.
    await key_platform.rotate(
        key_platform.user, "TICKETING_LOGIN_SIGNING_KEYS", [new_login, old_login]
    )
    await key_platform.rotate(
        key_platform.queue, "TICKETING_ADMISSION_SIGNING_KEYS", [new_admission, old_admission]
    )
    late = await log_in(key_platform)
    await admit(key_platform, waiting)  # logged in before the rotation, admitted after it
    await admit(key_platform, late)

    assert (kid_in(early.login), kid_in(early.admission)) == (
        kid_of(old_login),
        kid_of(old_admission),
    )
    assert (kid_in(late.login), kid_in(late.admission)) == (
        kid_of(new_login),
        kid_of(new_admission),
    )
    assert (await hold(key_platform, early, "A-2")).status_code == 201
    assert (await hold(key_platform, waiting, "A-3")).status_code == 201
    assert (await hold(key_platform, late, "A-4")).status_code == 201

    # Retire the old keys (once every token they signed has expired, in a real rotation).
    await key_platform.rotate(key_platform.user, "TICKETING_LOGIN_SIGNING_KEYS", [new_login])
    await key_platform.rotate(
        key_platform.queue, "TICKETING_ADMISSION_SIGNING_KEYS", [new_admission]
    )
    refused = await _until_refused(key_platform, early, reservation)

    assert (refused.status_code, refused.json()["detail"]) == (
        401,
        "token signed by an unknown or retired key",
    )
    assert (await hold(key_platform, late, "A-5")).status_code == 201


async def _until_refused(platform: KeyPlatform, buyer: Buyer, path: str) -> httpx.Response:
    """The verifier's answer to the buyer reading their reservation, once it has fetched the
    signer's key set again (within JWKS_MAX_AGE_SECONDS)."""
    deadline = time.monotonic() + 30
    async with httpx.AsyncClient(base_url=platform.reservation.base_url, timeout=10) as api:
        while (response := await api.get(path, headers=bearer(buyer.login))).status_code == 200:
            if time.monotonic() > deadline:
                raise AssertionError(f"still accepted: {response.text}")
            await asyncio.sleep(JWKS_MAX_AGE_SECONDS / 2)
    return response
