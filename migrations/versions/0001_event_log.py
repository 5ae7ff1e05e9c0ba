"""The append-only event log.

``position`` is the global order readers follow: assigned by the single writer
as max + 1 inside its locked transaction, so positions become visible in commit
order with no gaps. ``(call_sid, seq)`` is unique: a call's stream has one event
per sequence number.

Revision ID: 0001
Revises:
Create Date: 2026-11-25
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "events",
        sa.Column("position", sa.BigInteger(), primary_key=True, autoincrement=False),
        sa.Column("call_sid", sa.String(64), nullable=False),
        sa.Column("seq", sa.Integer(), nullable=False),
        sa.Column("type", sa.String(64), nullable=False),
        sa.Column("schema_version", sa.SmallInteger(), nullable=False),
        sa.Column("at_ms", sa.Float(), nullable=False),
        sa.Column("payload", sa.LargeBinary(), nullable=False),
        sa.UniqueConstraint("call_sid", "seq", name="uq_events_call_seq"),
    )


def downgrade() -> None:
    op.drop_table("events")
