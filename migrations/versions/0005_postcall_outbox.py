"""The post-call outbox: ended calls to deliver to EARSHOT_POSTCALL_URL (``events.outbox``).

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-26
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "outbox_feeds",
        sa.Column("name", sa.String(32), primary_key=True),
        sa.Column("position", sa.Integer(), nullable=False),
    )
    op.create_table(
        "postcall_outbox",
        sa.Column("call_sid", sa.String(64), primary_key=True),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("next_attempt_unix", sa.Float(), nullable=False),
        sa.Column("delivered_unix", sa.Float(), nullable=True),
        sa.Column("last_error", sa.String(200), nullable=True),
        sa.Column("claimed_by", sa.String(64), nullable=True),
        sa.Column("claimed_until_unix", sa.Float(), nullable=True),
    )


def downgrade() -> None:
    op.drop_table("postcall_outbox")
    op.drop_table("outbox_feeds")
