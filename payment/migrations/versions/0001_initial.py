"""payments, append-only ledger, processed_requests, faults"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from common.faults import create_faults_table
from common.idempotency import create_processed_requests

revision = "0001"
down_revision = None


def upgrade() -> None:
    op.create_table(
        "payments",
        sa.Column("order_id", sa.Text, primary_key=True),
        sa.Column("status", sa.Text, nullable=False),
        sa.Column("payment_id", sa.Text, nullable=True),
        sa.Column("customer_id", sa.Text, nullable=True),
        sa.Column("decline_reason", sa.Text, nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()),
        sa.CheckConstraint("status IN ('CHARGED', 'DECLINED', 'REFUNDED', 'VOIDED')", name="payments_status_known"),
    )
    op.create_table(
        "ledger",
        sa.Column("id", sa.BigInteger, sa.Identity(), primary_key=True),
        sa.Column("order_id", sa.Text, sa.ForeignKey("payments.order_id"), nullable=False),
        sa.Column("kind", sa.Text, nullable=False),
        sa.Column("amount_cents", sa.BigInteger, nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()),
        sa.CheckConstraint("kind IN ('charge', 'refund')", name="ledger_kind_known"),
        sa.CheckConstraint("amount_cents > 0", name="ledger_amount_positive"),
    )
    op.create_index("ledger_one_entry_per_kind", "ledger", ["order_id", "kind"], unique=True)
    # Money moves by appending rows; correcting one means appending another, never rewriting history.
    op.execute(
        """
        CREATE FUNCTION ledger_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN
            RAISE EXCEPTION 'the ledger is append-only (% refused)', TG_OP;
        END $$
        """
    )
    op.execute(
        """
        CREATE TRIGGER ledger_append_only BEFORE UPDATE OR DELETE ON ledger
            FOR EACH ROW EXECUTE FUNCTION ledger_append_only();
        """
    )
    create_processed_requests(op)
    create_faults_table(op)


def downgrade() -> None:
    op.drop_table("faults")
    op.drop_table("processed_requests")
    op.execute("DROP TRIGGER ledger_append_only ON ledger")
    op.execute("DROP FUNCTION ledger_append_only()")
    op.drop_table("ledger")
    op.drop_table("payments")
