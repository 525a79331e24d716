"""The outbox relay sets aside a row the broker refused for good, with the reason.

Revision ID: reservation_0003
Revises: reservation_0002
Create Date: 2026-12-02
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import mysql

revision: str = "reservation_0003"
down_revision: str | Sequence[str] | None = "reservation_0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column(
        "reservation_outbox", sa.Column("refused_at", mysql.DATETIME(fsp=6), nullable=True)
    )
    op.add_column("reservation_outbox", sa.Column("refused_reason", sa.String(255), nullable=True))


def downgrade() -> None:
    op.drop_column("reservation_outbox", "refused_reason")
    op.drop_column("reservation_outbox", "refused_at")
