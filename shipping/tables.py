"""The shipping database: one ``shipments`` row per order (scheduled, cancelled, or the tombstone of a
cancellation that came before any shipment)."""

from __future__ import annotations

import sqlalchemy as sa

from common.db import created_at, updated_at
from common.faults import faults_table
from common.idempotency import processed_requests_table
from shipping.domain import CANCELLED, SCHEDULED

metadata = sa.MetaData()

shipments = sa.Table(
    "shipments",
    metadata,
    sa.Column("order_id", sa.Text, primary_key=True),
    sa.Column("status", sa.Text, sa.CheckConstraint(f"status IN ('{SCHEDULED}', '{CANCELLED}')"), nullable=False),
    sa.Column("tracking_number", sa.Text, nullable=True),
    sa.Column("country", sa.Text, nullable=True),
    created_at(),
    updated_at(),
)

processed_requests = processed_requests_table(metadata)
faults = faults_table(metadata)
