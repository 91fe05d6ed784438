"""The order-api database: one ``orders`` row per submitted order (what was asked, its hash, where it stands),
and the ``faults`` of its own activity."""

from __future__ import annotations

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import JSONB

from common.db import created_at, updated_at
from common.faults import faults_table
from orchestrator.domain import STATUSES

metadata = sa.MetaData()

STATUS_CHECK = "status IN (" + ", ".join(f"'{s}'" for s in STATUSES) + ")"

orders = sa.Table(
    "orders",
    metadata,
    sa.Column("order_id", sa.Text, primary_key=True),
    # Insertion order for keyset pagination: unique and monotonic, unlike created_at.
    sa.Column("seq", sa.BigInteger, sa.Identity(), nullable=False, unique=True),
    sa.Column("request", JSONB, nullable=False),
    sa.Column("request_hash", sa.Text, nullable=False),
    sa.Column("customer_id", sa.Text, nullable=False),
    sa.Column("email", sa.Text, nullable=False),
    sa.Column("status", sa.Text, nullable=False),
    # How far the saga's status records have moved the order (domain.stage): a record applies only to a row behind it.
    sa.Column("stage", sa.SmallInteger, nullable=False, server_default="0"),
    sa.Column("total_cents", sa.BigInteger, nullable=True),  # known once validate_order has priced the items
    sa.Column("items", JSONB, nullable=False),
    sa.Column("failure", JSONB, nullable=True),
    sa.Column("saga", JSONB, nullable=True),  # the saga's final summary: survives a purged workflow
    # When a starter claimed the start of this PENDING order's saga (service.Orders._ensure_started).
    sa.Column("start_claimed_at", sa.DateTime(timezone=True), nullable=True),
    created_at(),
    updated_at(),
    sa.CheckConstraint(STATUS_CHECK, name="orders_status_known"),
    sa.CheckConstraint("total_cents IS NULL OR total_cents >= 0", name="orders_total_not_negative"),
    sa.Index("orders_by_status", "status", "seq"),
)

faults = faults_table(metadata)
