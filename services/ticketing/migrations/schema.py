"""Where a database stands against this code's migrations: what readiness and `migrate --wait` ask.

Each owner of tables has its own Alembic branch (`core`, `reservation`, `payment`). A database
serves an owner when it holds that branch's head, or a revision this code does not know (a newer
release migrated it; migrations only add, so the older code still works on it).
"""

import asyncio
import logging
import time
from collections.abc import Iterable
from functools import cache

from alembic.config import Config
from alembic.script import ScriptDirectory
from sqlalchemy import text
from sqlalchemy.exc import InterfaceError, OperationalError, ProgrammingError
from sqlalchemy.ext.asyncio import AsyncConnection

from ticketing.common.db import make_engine
from ticketing.migrations.run import HERE

log = logging.getLogger("ticketing.migrations")
# While waiting, the same reason is logged again after this long, so the pod's log shows life.
LOG_EVERY_SECONDS = 30.0


class SchemaNotReady(RuntimeError):
    """The database lacks migrations an owner's code needs; the message says which."""


@cache
def _script() -> ScriptDirectory:
    config = Config(str(HERE / "alembic.ini"))
    config.set_main_option("script_location", str(HERE))
    return ScriptDirectory.from_config(config)


def owners() -> list[str]:
    """Every branch label, i.e. every owner of tables."""
    return sorted(
        label for head in _script().get_revisions("heads") for label in head.branch_labels
    )


@cache
def _lineage(owner: str) -> tuple[str, frozenset[str]]:
    script = _script()
    head = script.get_revision(f"{owner}@head")
    if head is None:
        raise ValueError(f"no migration branch {owner!r}")
    return head.revision, frozenset(
        r.revision for r in script.iterate_revisions(head.revision, "base")
    )


def missing_migrations(applied: Iterable[str], owned_by: Iterable[str]) -> list[str]:
    """What the database (its `alembic_version` rows, `applied`) lacks for each owner: one
    sentence per owner that is behind, none when it serves them all."""
    rows = set(applied)
    known = set().union(*(_lineage(owner)[1] for owner in owners()))
    missing = []
    for owner in owned_by:
        head, lineage = _lineage(owner)
        if head in rows:
            continue
        behind = sorted(rows & lineage)
        if behind:
            missing.append(f"{owner} is at {', '.join(behind)}, needs {head}")
        elif not rows - known:
            missing.append(f"{owner} is not migrated, needs {head}")
    return missing


async def applied_revisions(connection: AsyncConnection) -> list[str]:
    """The revisions recorded in `alembic_version`; none when the table does not exist."""
    try:
        result = await connection.execute(text("SELECT version_num FROM alembic_version"))
    except ProgrammingError:  # 1146: the table does not exist, nothing was migrated
        return []
    return [str(row) for row in result.scalars()]


async def check_schema(connection: AsyncConnection, owned_by: Iterable[str]) -> None:
    """Raise `SchemaNotReady` naming every owner the database does not serve yet."""
    missing = missing_migrations(await applied_revisions(connection), owned_by)
    if missing:
        raise SchemaNotReady("; ".join(missing))


async def wait_until_migrated(database_url: str, poll_seconds: float = 2.0) -> None:
    """Return once the database serves every owner; until then say, now and then, what it lacks.

    An unreachable database is waited for too: this is what a pod runs before its service starts
    (the chart's init container), while the migration Job brings the schema up.
    """
    engine = make_engine(database_url, pool_size=1)
    said, last_said = "", 0.0
    try:
        while True:
            try:
                async with engine.connect() as connection:
                    await check_schema(connection, owners())
                return
            except (SchemaNotReady, OperationalError, InterfaceError) as exc:
                reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
                now = time.monotonic()
                if reason != said or now - last_said > LOG_EVERY_SECONDS:
                    log.info("waiting for the migrations", extra={"reason": reason[:200]})
                    said, last_said = reason, now
            await asyncio.sleep(poll_seconds)
    finally:
        await engine.dispose()
