"""The MySQL (MariaDB) engine: one async engine per process, created in the service's lifespan."""

import time
from typing import Any

from sqlalchemy import event
from sqlalchemy.engine import URL, make_url
from sqlalchemy.exc import DisconnectionError
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine
from sqlalchemy.pool import ConnectionPoolEntry, PoolProxiedConnection, PoolResetState

# A pooled connection idle for longer than this is pinged before it is handed out: the server
# may have dropped it meanwhile (a restart, a KILL, wait_timeout). One handed back less than
# this ago is handed out as it is. Pinging every checkout (pool_pre_ping) was a round trip on
# each of a request's checkouts: 7-14 % of the reservation service's CPU in a sale's rush.
IDLE_PING_SECONDS = 1.0
_CHECKED_IN_AT = "ticketing_checked_in_at"


def make_engine(database_url: str, pool_size: int = 10) -> AsyncEngine:
    engine = create_async_engine(
        database_url,
        pool_size=pool_size,
        max_overflow=pool_size,
        pool_recycle=1800,
        # The reset is `_roll_back_if_open`'s.
        pool_reset_on_return=None,
    )
    pool = engine.sync_engine.pool
    event.listen(pool, "checkin", _note_checkin)
    event.listen(pool, "checkout", _ping_if_idle)
    event.listen(pool, "reset", _roll_back_if_open)
    return engine


def _roll_back_if_open(
    dbapi_connection: Any, _: ConnectionPoolEntry, state: PoolResetState
) -> None:
    """The pool's reset of a connection handed back, without a ROLLBACK where the server said
    no transaction is open. SQLAlchemy's own reset sends one after every committed transaction
    (`engine.begin()` commits, then hands the connection back): 4 of the 17 statements a
    confirmed reservation cost (loadtest.bench_confirm). The driver knows from the server's
    status on its last reply; a connection in an unknown state (a failed COMMIT) is rolled back."""
    if state.transaction_was_reset or not state.asyncio_safe:
        return
    if dbapi_connection.driver_connection.get_transaction_status():
        dbapi_connection.rollback()


def _note_checkin(_: Any, record: ConnectionPoolEntry) -> None:
    record.info[_CHECKED_IN_AT] = time.monotonic()


def _ping_if_idle(
    dbapi_connection: Any, record: ConnectionPoolEntry, _: PoolProxiedConnection
) -> None:
    """Ping a connection that sat in the pool; a dead one makes the pool connect afresh."""
    if time.monotonic() - record.info.get(_CHECKED_IN_AT, float("-inf")) <= IDLE_PING_SECONDS:
        return
    try:
        dbapi_connection.ping(False)
    except Exception as exc:
        raise DisconnectionError("the pooled connection was dropped by the server") from exc


def server_url(database_url: str) -> str:
    """The same server without a database, for CREATE DATABASE."""
    url = make_url(database_url)
    bare = URL.create(url.drivername, url.username, url.password, url.host, url.port)
    return bare.render_as_string(hide_password=False)
