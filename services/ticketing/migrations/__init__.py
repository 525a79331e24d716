"""The database schema's history (Alembic), one branch per owner, applied with `upgrade heads`."""
