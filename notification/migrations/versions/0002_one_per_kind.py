"""notifications: at most one message of each kind per order (a customer told once that an order failed, even
when an operator's resolution follows the saga's own notice)"""

from __future__ import annotations

from alembic import op

revision = "0002"
down_revision = "0001"


def upgrade() -> None:
    op.create_index("notifications_one_per_kind", "notifications", ["order_id", "kind"], unique=True)


def downgrade() -> None:
    op.drop_index("notifications_one_per_kind", "notifications")
