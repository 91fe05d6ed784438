"""The notification database: every message "sent", one per idempotency key."""

from __future__ import annotations

import sqlalchemy as sa

from common.db import created_at
from common.faults import faults_table
from common.idempotency import processed_requests_table

metadata = sa.MetaData()

notifications = sa.Table(
    "notifications",
    metadata,
    sa.Column("id", sa.BigInteger, sa.Identity(), primary_key=True),
    sa.Column("idempotency_key", sa.Text, nullable=False, unique=True),
    sa.Column("order_id", sa.Text, nullable=False, index=True),
    sa.Column("kind", sa.Text, nullable=False),
    sa.Column("channel", sa.Text, nullable=False),
    sa.Column("status", sa.Text, nullable=False),
    sa.Column("recipient", sa.Text, nullable=False),
    sa.Column("detail", sa.Text, nullable=True),
    created_at(),
    # One message of each kind per order: a second (say, an operator's resolution after the saga's own notice) is
    # not sent.
    sa.Index("notifications_one_per_kind", "order_id", "kind", unique=True),
)

processed_requests = processed_requests_table(metadata)
faults = faults_table(metadata)
