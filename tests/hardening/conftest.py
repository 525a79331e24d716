"""Fixtures of the hardening tests; the services' own fixtures (migrated database, in-process
apps) come from tests/core/conftest.py."""

from tests.core.conftest import migrated_database, serve

__all__ = ["migrated_database", "serve"]
