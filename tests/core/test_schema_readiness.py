"""A service is ready only on a database that holds its migrations, and `migrate --wait` holds a
pod back until the migration Job has run: both against a real MariaDB, empty and migrated."""

import asyncio
import os
import subprocess
import sys

from alembic import command
from sqlalchemy import text
from ticketing.common.resources import open_database
from ticketing.common.settings import CommonSettings
from ticketing.migrations.run import alembic_config, upgrade
from ticketing.payment.app import create_app as create_payment_app
from ticketing.payment.settings import PaymentSettings
from ticketing.user.app import create_app as create_user_app
from ticketing.user.settings import UserSettings

from tests.core.conftest import Serve


async def test_readyz_is_503_on_an_empty_schema_and_200_once_migrated(
    settings: CommonSettings, database_url: str, serve: Serve
) -> None:
    client = await serve(create_user_app(UserSettings(**settings.model_dump())))

    empty = await client.get("/readyz")
    await asyncio.to_thread(upgrade, database_url)
    migrated = await client.get("/readyz")

    assert empty.status_code == 503
    assert empty.json()["failed"]["database"] == (
        "SchemaNotReady: core is not migrated, needs core_0002"
    )
    assert migrated.status_code == 200


async def test_readyz_names_the_revision_a_schema_is_behind_at(
    settings: CommonSettings, database_url: str, serve: Serve
) -> None:
    await asyncio.to_thread(command.upgrade, alembic_config(database_url), "core_0001")
    client = await serve(create_user_app(UserSettings(**settings.model_dump())))

    response = await client.get("/readyz")

    assert response.status_code == 503
    assert response.json()["failed"]["database"] == (
        "SchemaNotReady: core is at core_0001, needs core_0002"
    )


async def test_readyz_asks_for_the_branch_the_service_owns(
    settings: CommonSettings, database_url: str, serve: Serve
) -> None:
    # Another owner's tables are there; the payment service's are not.
    await asyncio.to_thread(command.upgrade, alembic_config(database_url), "core@head")
    client = await serve(create_payment_app(PaymentSettings(**settings.model_dump())))

    response = await client.get("/readyz")

    assert response.status_code == 503
    assert response.json()["failed"]["database"] == (
        "SchemaNotReady: payment is not migrated, needs payment_0001"
    )


async def test_readyz_stays_ready_on_a_schema_a_newer_release_migrated(
    settings: CommonSettings, database_url: str, serve: Serve
) -> None:
    await asyncio.to_thread(upgrade, database_url)
    async with open_database(database_url) as engine, engine.begin() as conn:
        await conn.execute(
            text("UPDATE alembic_version SET version_num = 'core_9999' WHERE version_num = :v"),
            {"v": "core_0002"},
        )
    client = await serve(create_user_app(UserSettings(**settings.model_dump())))

    assert (await client.get("/readyz")).status_code == 200


def test_migrate_wait_returns_only_once_the_schema_is_migrated(database_url: str) -> None:
    env = {**os.environ, "TICKETING_DATABASE_URL": database_url}
    waiting = subprocess.Popen(
        [sys.executable, "-m", "ticketing", "migrate", "--wait"],
        env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )  # fmt: skip
    try:
        try:
            waiting.wait(timeout=4)
        except subprocess.TimeoutExpired:
            still_waiting = True
        else:
            still_waiting = False
        subprocess.run(
            [sys.executable, "-m", "ticketing", "migrate"],
            env=env, capture_output=True, timeout=120, check=True,
        )  # fmt: skip
        returncode = waiting.wait(timeout=30)
    finally:
        if waiting.poll() is None:
            waiting.kill()
            waiting.wait()
        output, _ = waiting.communicate()

    assert still_waiting, f"migrate --wait returned on an empty schema:\n{output[-2000:]}"
    assert returncode == 0, output[-2000:]
    assert "waiting for the migrations" in output
