"""The inventory database: the catalog with its available stock, and one reservation per order (its items,
or the tombstone of a release that came first)."""

from __future__ import annotations

import sqlalchemy as sa

from common.db import created_at, updated_at
from common.faults import faults_table
from common.idempotency import processed_requests_table
from inventory.domain import RELEASED, RESERVED

metadata = sa.MetaData()

products = sa.Table(
    "products",
    metadata,
    sa.Column("sku", sa.Text, primary_key=True),
    sa.Column("name", sa.Text, nullable=False),
    sa.Column("price_cents", sa.BigInteger, sa.CheckConstraint("price_cents >= 0"), nullable=False),
    sa.Column("available", sa.Integer, sa.CheckConstraint("available >= 0"), nullable=False),
)

reservations = sa.Table(
    "reservations",
    metadata,
    sa.Column("order_id", sa.Text, primary_key=True),
    sa.Column("status", sa.Text, sa.CheckConstraint(f"status IN ('{RESERVED}', '{RELEASED}')"), nullable=False),
    created_at(),
    updated_at(),
)

reservation_items = sa.Table(
    "reservation_items",
    metadata,
    sa.Column("order_id", sa.Text, sa.ForeignKey("reservations.order_id"), primary_key=True),
    sa.Column("sku", sa.Text, sa.ForeignKey("products.sku"), primary_key=True),
    sa.Column("quantity", sa.Integer, sa.CheckConstraint("quantity > 0"), nullable=False),
)

processed_requests = processed_requests_table(metadata)
faults = faults_table(metadata)
