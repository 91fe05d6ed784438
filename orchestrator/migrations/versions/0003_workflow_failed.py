"""orders.status may be WORKFLOW_FAILED: a saga workflow that failed outside the saga, for an operator to resolve

Revision ID: 0003
Revises: 0002
"""

from __future__ import annotations

from alembic import op

revision = "0003"
down_revision = "0002"

# As of this revision (frozen, like 0001's: later statuses need a new revision, not an edit here).
BEFORE = "status IN ('PENDING', 'RUNNING', 'COMPLETED', 'COMPENSATED', 'REJECTED', 'CANCELLED', 'COMPENSATION_FAILED')"
AFTER = (
    "status IN ('PENDING', 'RUNNING', 'COMPLETED', 'COMPENSATED', 'REJECTED', 'CANCELLED', 'COMPENSATION_FAILED', "
    "'WORKFLOW_FAILED')"
)


def upgrade() -> None:
    op.drop_constraint("orders_status_known", "orders", type_="check")
    op.create_check_constraint("orders_status_known", "orders", AFTER)


def downgrade() -> None:
    # An order left WORKFLOW_FAILED has no older status to go back to: it is shown as RUNNING again, which the
    # reconcile sweep of a newer order-api would correct.
    op.execute("UPDATE orders SET status = 'RUNNING' WHERE status = 'WORKFLOW_FAILED'")
    op.drop_constraint("orders_status_known", "orders", type_="check")
    op.create_check_constraint("orders_status_known", "orders", BEFORE)
