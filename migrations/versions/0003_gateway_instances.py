"""Gateway instances and their leases: several gateways on one store, and calls of a
dead one ended by a live one (``events.leases``).

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-25
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "gateway_instances",
        sa.Column("instance_id", sa.String(64), primary_key=True),
        sa.Column("host", sa.String(255), nullable=False),
        sa.Column("pid", sa.Integer(), nullable=False),
        sa.Column("started_unix", sa.Float(), nullable=False),
        sa.Column("lease_until_unix", sa.Float(), nullable=False),
        sa.Column("recovered_unix", sa.Float(), nullable=True),
    )


def downgrade() -> None:
    op.drop_table("gateway_instances")
