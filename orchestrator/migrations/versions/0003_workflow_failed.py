"""orders.status may be WORKFLOW_FAILED: a saga workflow that failed outside the saga, for an operator to resolve"""

from __future__ import annotations

from alembic import op

from common.migrate import replace_check

revision = "0003"
down_revision = "0002"

# As of this revision (frozen, like 0001's: later statuses need a new revision, not an edit here).
BEFORE = "status IN ('PENDING', 'RUNNING', 'COMPLETED', 'COMPENSATED', 'REJECTED', 'CANCELLED', 'COMPENSATION_FAILED')"
AFTER = (
    "status IN ('PENDING', 'RUNNING', 'COMPLETED', 'COMPENSATED', 'REJECTED', 'CANCELLED', 'COMPENSATION_FAILED', "
    "'WORKFLOW_FAILED')"
)


def upgrade() -> None:
    replace_check(op, "orders", "orders_status_known", AFTER)


def downgrade() -> None:
    # An order left WORKFLOW_FAILED has no older status to go back to: it is shown as RUNNING again, which the
    # reconcile sweep of a newer order-api would correct.
    op.execute("UPDATE orders SET status = 'RUNNING' WHERE status = 'WORKFLOW_FAILED'")
    replace_check(op, "orders", "orders_status_known", BEFORE)
