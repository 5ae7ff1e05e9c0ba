"""Bookings taken by the bundled booking tool (``gateway.booking_service``).

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-26
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "bookings",
        sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
        sa.Column("call_sid", sa.String(64), nullable=False),
        sa.Column("name", sa.String(80), nullable=False),
        sa.Column("party_size", sa.Integer(), nullable=False),
        sa.Column("time_text", sa.String(40), nullable=False),
        sa.Column("created_unix", sa.Float(), nullable=False),
    )


def downgrade() -> None:
    op.drop_table("bookings")
