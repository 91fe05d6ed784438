"""catalog (seeded with the demo products), reservations, processed_requests, faults"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from common.faults import create_faults_table
from common.idempotency import create_processed_requests

revision = "0001"
down_revision = None

# The demo catalog. SKU-LAMP has little stock on purpose: order 4 of them to see "out of stock".
DEMO_CATALOG = [
    ("SKU-MUG", "Ceramic mug", 1200, 100),
    ("SKU-TEE", "Cotton T-shirt", 2500, 100),
    ("SKU-HOODIE", "Hoodie", 5500, 50),
    ("SKU-CAP", "Baseball cap", 1800, 80),
    ("SKU-STICKERS", "Sticker pack", 400, 500),
    ("SKU-NOTEBOOK", "Dotted notebook", 900, 200),
    ("SKU-BOTTLE", "Steel water bottle", 2200, 60),
    ("SKU-TOTE", "Canvas tote bag", 1500, 70),
    ("SKU-LAMP", "Desk lamp (limited run)", 7900, 3),
]


def upgrade() -> None:
    products = op.create_table(
        "products",
        sa.Column("sku", sa.Text, primary_key=True),
        sa.Column("name", sa.Text, nullable=False),
        sa.Column("price_cents", sa.BigInteger, sa.CheckConstraint("price_cents >= 0"), nullable=False),
        sa.Column("available", sa.Integer, sa.CheckConstraint("available >= 0"), nullable=False),
    )
    op.create_table(
        "reservations",
        sa.Column("order_id", sa.Text, primary_key=True),
        sa.Column("status", sa.Text, sa.CheckConstraint("status IN ('RESERVED', 'RELEASED')"), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()),
    )
    op.create_table(
        "reservation_items",
        sa.Column("order_id", sa.Text, sa.ForeignKey("reservations.order_id"), primary_key=True),
        sa.Column("sku", sa.Text, sa.ForeignKey("products.sku"), primary_key=True),
        sa.Column("quantity", sa.Integer, sa.CheckConstraint("quantity > 0"), nullable=False),
    )
    create_processed_requests(op)
    create_faults_table(op)
    op.bulk_insert(
        products,
        [
            {"sku": sku, "name": name, "price_cents": price, "available": stock}
            for sku, name, price, stock in DEMO_CATALOG
        ],
    )


def downgrade() -> None:
    for table in ("faults", "processed_requests", "reservation_items", "reservations", "products"):
        op.drop_table(table)
