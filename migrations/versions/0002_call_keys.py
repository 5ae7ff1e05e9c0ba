"""Per-call data keys: callers' words and audio encrypted at rest, and forgettable.

``wrapped_key`` is the call's AES key wrapped by the master key (``EARSHOT_DATA_KEY``);
NULL once the call is forgotten (``forgotten_unix`` says when), which leaves its
encrypted fields unreadable for good.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-25
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "call_keys",
        sa.Column("call_sid", sa.String(64), primary_key=True),
        sa.Column("wrapped_key", sa.LargeBinary(), nullable=True),
        sa.Column("created_unix", sa.Float(), nullable=False),
        sa.Column("forgotten_unix", sa.Float(), nullable=True),
    )


def downgrade() -> None:
    op.drop_table("call_keys")
