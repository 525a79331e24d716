"""events, venues and loaded seat inventories.

Revision ID: core_0002
Revises: core_0001
Create Date: 2026-05-10
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import mysql

revision: str = "core_0002"
down_revision: str | Sequence[str] | None = "core_0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "events",
        sa.Column("id", sa.String(100), primary_key=True),
        sa.Column("title", sa.String(200), nullable=False),
        sa.Column("venue_id", sa.String(100), nullable=False),
        sa.Column("opens_at", mysql.DATETIME(fsp=6), nullable=False),
        sa.Column("closes_at", mysql.DATETIME(fsp=6), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("created_at", mysql.DATETIME(fsp=6), nullable=False),
    )
    op.create_index("ix_events_venue_id", "events", ["venue_id"])
    op.create_index("ix_events_opens_at", "events", ["opens_at"])
    op.create_table(
        "venues",
        sa.Column("id", sa.String(100), primary_key=True),
        sa.Column("name", sa.String(200), nullable=False),
        sa.Column("layout", sa.JSON(), nullable=False),
        sa.Column("seat_count", sa.Integer(), nullable=False),
        sa.Column("created_at", mysql.DATETIME(fsp=6), nullable=False),
    )
    op.create_table(
        "inventories",
        sa.Column("event_id", sa.String(100), primary_key=True),
        sa.Column("venue_id", sa.String(100), nullable=False),
        sa.Column("seat_count", sa.Integer(), nullable=False),
        sa.Column("loaded_at", mysql.DATETIME(fsp=6), nullable=False),
    )


def downgrade() -> None:
    op.drop_table("inventories")
    op.drop_table("venues")
    op.drop_table("events")
