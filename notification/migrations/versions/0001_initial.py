"""notifications, processed_requests, faults"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from common.faults import create_faults_table
from common.idempotency import create_processed_requests

revision = "0001"
down_revision = None


def upgrade() -> None:
    op.create_table(
        "notifications",
        sa.Column("id", sa.BigInteger, sa.Identity(), primary_key=True),
        sa.Column("idempotency_key", sa.Text, nullable=False, unique=True),
        sa.Column("order_id", sa.Text, nullable=False),
        sa.Column("kind", sa.Text, nullable=False),
        sa.Column("channel", sa.Text, nullable=False),
        sa.Column("status", sa.Text, nullable=False),
        sa.Column("recipient", sa.Text, nullable=False),
        sa.Column("detail", sa.Text, nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()),
    )
    op.create_index("ix_notifications_order_id", "notifications", ["order_id"])
    create_processed_requests(op)
    create_faults_table(op)


def downgrade() -> None:
    for table in ("faults", "processed_requests", "notifications"):
        op.drop_table(table)
