"""orders: AWAITING_APPROVAL (the saga waits for a person) and ``stage``, how far the status records have moved an
order, so that one arriving late or twice never moves it back (RUNNING comes before and after AWAITING_APPROVAL)"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from common.migrate import replace_check

revision = "0004"
down_revision = "0003"

# As of this revision (frozen, like the others: later statuses need a new revision, not an edit here).
BEFORE = (
    "status IN ('PENDING', 'RUNNING', 'COMPLETED', 'COMPENSATED', 'REJECTED', 'CANCELLED', 'COMPENSATION_FAILED', "
    "'WORKFLOW_FAILED')"
)
AFTER = (
    "status IN ('PENDING', 'RUNNING', 'AWAITING_APPROVAL', 'COMPLETED', 'COMPENSATED', 'REJECTED', 'CANCELLED', "
    "'COMPENSATION_FAILED', 'WORKFLOW_FAILED')"
)


def upgrade() -> None:
    op.add_column("orders", sa.Column("stage", sa.SmallInteger, nullable=False, server_default="0"))
    # The stages of domain.stage, for the rows already there (none is AWAITING_APPROVAL yet).
    op.execute(
        "UPDATE orders SET stage = CASE status WHEN 'PENDING' THEN 0 WHEN 'RUNNING' THEN 1 "
        "WHEN 'WORKFLOW_FAILED' THEN 4 ELSE 5 END"
    )
    replace_check(op, "orders", "orders_status_known", AFTER)


def downgrade() -> None:
    op.execute("UPDATE orders SET status = 'RUNNING' WHERE status = 'AWAITING_APPROVAL'")
    replace_check(op, "orders", "orders_status_known", BEFORE)
    op.drop_column("orders", "stage")
