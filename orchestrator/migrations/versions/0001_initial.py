"""orders, faults"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import JSONB

from common.faults import create_faults_table

revision = "0001"
down_revision = None

# As of this revision; later status changes need a new revision, not an edit here.
STATUS_CHECK = (
    "status IN ('PENDING', 'RUNNING', 'COMPLETED', 'COMPENSATED', 'REJECTED', 'CANCELLED', 'COMPENSATION_FAILED')"
)


def upgrade() -> None:
    op.create_table(
        "orders",
        sa.Column("order_id", sa.Text, primary_key=True),
        sa.Column("seq", sa.BigInteger, sa.Identity(), nullable=False, unique=True),
        sa.Column("request", JSONB, nullable=False),
        sa.Column("request_hash", sa.Text, nullable=False),
        sa.Column("customer_id", sa.Text, nullable=False),
        sa.Column("email", sa.Text, nullable=False),
        sa.Column("status", sa.Text, nullable=False),
        sa.Column("total_cents", sa.BigInteger, nullable=True),
        sa.Column("items", JSONB, nullable=False),
        sa.Column("failure", JSONB, nullable=True),
        sa.Column("saga", JSONB, nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()),
        sa.CheckConstraint(STATUS_CHECK, name="orders_status_known"),
        sa.CheckConstraint("total_cents IS NULL OR total_cents >= 0", name="orders_total_not_negative"),
    )
    op.create_index("orders_by_status", "orders", ["status", "seq"])
    create_faults_table(op)


def downgrade() -> None:
    op.drop_table("faults")
    op.drop_table("orders")
