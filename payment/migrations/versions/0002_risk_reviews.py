"""risk_reviews: payment's record of each order's risk review (what it decided and why, the custody check);
payments_by_customer: the review counts a customer's payments"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import JSONB

revision = "0002"
down_revision = "0001"


def upgrade() -> None:
    op.create_table(
        "risk_reviews",
        sa.Column("order_id", sa.Text, primary_key=True),
        sa.Column("customer_id", sa.Text, nullable=False),
        sa.Column("amount_cents", sa.BigInteger, nullable=False),
        sa.Column("decision", sa.Text, nullable=False),
        sa.Column("reason", sa.Text, nullable=True),
        sa.Column("facts", JSONB, nullable=False),
        sa.Column("custody", JSONB, nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()),
        sa.CheckConstraint("decision IN ('approve', 'reject', 'review')", name="risk_reviews_decision_known"),
    )
    op.create_index("risk_reviews_by_customer", "risk_reviews", ["customer_id"])
    op.create_index("payments_by_customer", "payments", ["customer_id"])


def downgrade() -> None:
    op.drop_index("payments_by_customer", "payments")
    op.drop_table("risk_reviews")
