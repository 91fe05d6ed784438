"""shipments, processed_requests, faults"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from common.faults import create_faults_table
from common.idempotency import create_processed_requests

revision = "0001"
down_revision = None


def upgrade() -> None:
    op.create_table(
        "shipments",
        sa.Column("order_id", sa.Text, primary_key=True),
        sa.Column("status", sa.Text, sa.CheckConstraint("status IN ('SCHEDULED', 'CANCELLED')"), nullable=False),
        sa.Column("tracking_number", sa.Text, nullable=True),
        sa.Column("country", sa.Text, nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()),
    )
    create_processed_requests(op)
    create_faults_table(op)


def downgrade() -> None:
    for table in ("faults", "processed_requests", "shipments"):
        op.drop_table(table)
