"""The outbox relay claims rows for a while instead of holding them locked while it sends.

Revision ID: reservation_0002
Revises: reservation_0001
Create Date: 2026-12-01
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import mysql

revision: str = "reservation_0002"
down_revision: str | Sequence[str] | None = "reservation_0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column(
        "reservation_outbox", sa.Column("claimed_until", mysql.DATETIME(fsp=6), nullable=True)
    )


def downgrade() -> None:
    op.drop_column("reservation_outbox", "claimed_until")
