"""The payment database: one ``payments`` row per order (its state, or the tombstone of a refund that came
first), the append-only ``ledger`` of money movements, and one ``risk_reviews`` row per order reviewed."""

from __future__ import annotations

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import JSONB

from common.contracts import APPROVE, REJECT, REVIEW
from common.db import created_at, updated_at
from common.faults import faults_table
from common.idempotency import processed_requests_table
from payment.domain import CHARGED, DECLINED, REFUNDED, VOIDED

metadata = sa.MetaData()

payments = sa.Table(
    "payments",
    metadata,
    sa.Column("order_id", sa.Text, primary_key=True),
    sa.Column("status", sa.Text, nullable=False),
    sa.Column("payment_id", sa.Text, nullable=True),
    sa.Column("customer_id", sa.Text, nullable=True),
    sa.Column("decline_reason", sa.Text, nullable=True),
    created_at(),
    updated_at(),
    sa.CheckConstraint(
        f"status IN ('{CHARGED}', '{DECLINED}', '{REFUNDED}', '{VOIDED}')", name="payments_status_known"
    ),
    sa.Index("payments_by_customer", "customer_id"),  # a risk review counts the customer's payments
)

ledger = sa.Table(
    "ledger",
    metadata,
    sa.Column("id", sa.BigInteger, sa.Identity(), primary_key=True),
    sa.Column("order_id", sa.Text, sa.ForeignKey("payments.order_id"), nullable=False),
    sa.Column("kind", sa.Text, nullable=False),
    sa.Column("amount_cents", sa.BigInteger, nullable=False),
    created_at(),
    sa.CheckConstraint("kind IN ('charge', 'refund')", name="ledger_kind_known"),
    sa.CheckConstraint("amount_cents > 0", name="ledger_amount_positive"),
    # At most one charge and one refund per order: the data itself forbids a double charge or refund.
    sa.Index("ledger_one_entry_per_kind", "order_id", "kind", unique=True),
)

# What each order's risk review decided and why, with the custody check: the first assessment of an order stands.
risk_reviews = sa.Table(
    "risk_reviews",
    metadata,
    sa.Column("order_id", sa.Text, primary_key=True),
    sa.Column("customer_id", sa.Text, nullable=False),
    sa.Column("amount_cents", sa.BigInteger, nullable=False),
    sa.Column("decision", sa.Text, nullable=False),
    sa.Column("reason", sa.Text, nullable=True),
    sa.Column("facts", JSONB, nullable=False),
    sa.Column("custody", JSONB, nullable=False),
    created_at(),
    sa.CheckConstraint(f"decision IN ('{APPROVE}', '{REJECT}', '{REVIEW}')", name="risk_reviews_decision_known"),
    sa.Index("risk_reviews_by_customer", "customer_id"),
)

processed_requests = processed_requests_table(metadata)
faults = faults_table(metadata)
