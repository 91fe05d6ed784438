"""orders: AWAITING_APPROVAL (the saga waits for a person) and ``stage``, how far the status records have moved an
order, so that one arriving late or twice never moves it back (RUNNING comes before and after AWAITING_APPROVAL)

Revision ID: 0003
Revises: 0002
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"

# As of this revision; later status changes need a new revision, not an edit here.
STATUS_CHECK = (
    "status IN ('PENDING', 'RUNNING', 'AWAITING_APPROVAL', 'COMPLETED', 'COMPENSATED', 'REJECTED', 'CANCELLED', "
    "'COMPENSATION_FAILED')"
)
OLD_STATUS_CHECK = (
    "status IN ('PENDING', 'RUNNING', 'COMPLETED', 'COMPENSATED', 'REJECTED', 'CANCELLED', 'COMPENSATION_FAILED')"
)


def upgrade() -> None:
    op.add_column("orders", sa.Column("stage", sa.SmallInteger, nullable=False, server_default="0"))
    op.execute("UPDATE orders SET stage = CASE status WHEN 'PENDING' THEN 0 WHEN 'RUNNING' THEN 1 ELSE 4 END")
    op.drop_constraint("orders_status_known", "orders", type_="check")
    op.create_check_constraint("orders_status_known", "orders", STATUS_CHECK)


def downgrade() -> None:
    op.execute("UPDATE orders SET status = 'RUNNING' WHERE status = 'AWAITING_APPROVAL'")
    op.drop_constraint("orders_status_known", "orders", type_="check")
    op.create_check_constraint("orders_status_known", "orders", OLD_STATUS_CHECK)
    op.drop_column("orders", "stage")
