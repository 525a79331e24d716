"""The MySQL (MariaDB) engine: one async engine per process, created in the service's lifespan."""

from sqlalchemy.engine import URL, make_url
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine


def make_engine(database_url: str, pool_size: int = 10) -> AsyncEngine:
    return create_async_engine(
        database_url,
        pool_size=pool_size,
        max_overflow=pool_size,
        pool_pre_ping=True,
        pool_recycle=1800,
    )


def server_url(database_url: str) -> str:
    """The same server without a database, for CREATE DATABASE."""
    url = make_url(database_url)
    bare = URL.create(url.drivername, url.username, url.password, url.host, url.port)
    return bare.render_as_string(hide_password=False)
