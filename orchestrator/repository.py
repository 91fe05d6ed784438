"""SQL on the ``orders`` table (SQLAlchemy Core on the caller's session; the caller owns the transaction)."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import insert

from common.fastdb import Connection
from orchestrator.domain import (
    AWAITING_APPROVAL,
    PENDING,
    RUNNING,
    SETTLED,
    OrderStatusUpdate,
    stage,
)
from orchestrator.tables import orders

Row = dict[str, Any]


async def insert_order(session: Connection, values: Row) -> tuple[Row, bool]:
    """Insert a PENDING order unless its ID exists. Returns (the row, True if this call created it)."""
    created = (
        await session.execute(
            insert(orders)
            .values(**values, status=PENDING)
            .on_conflict_do_nothing(index_elements=["order_id"])
            .returning(*orders.c)
        )
    ).first()
    if created is not None:
        return dict(created._mapping), True
    existing = await get_order(session, values["order_id"])
    assert existing is not None  # orders are never deleted
    return existing, False


async def get_order(session: Connection, order_id: str) -> Row | None:
    row = (await session.execute(sa.select(orders).where(orders.c.order_id == order_id))).first()
    return dict(row._mapping) if row is not None else None


async def claim_start(session: Connection, order_id: str, ttl: timedelta) -> Row | None:
    """Claim the start of a PENDING order's saga: the row if this call won, None if the order is not PENDING or
    another starter claimed it less than ``ttl`` ago. One guarded UPDATE: of concurrent claimers, one wins."""
    c = orders.c
    claimed = (
        await session.execute(
            sa.update(orders)
            .where(
                c.order_id == order_id,
                c.status == PENDING,
                sa.or_(c.start_claimed_at.is_(None), c.start_claimed_at < sa.func.now() - ttl),
            )
            .values(start_claimed_at=sa.func.now())
            .returning(*orders.c)
        )
    ).first()
    return dict(claimed._mapping) if claimed is not None else None


async def release_start(session: Connection, order_id: str) -> None:
    """Drop a claim whose start failed, so that the next starter need not wait for it to expire."""
    await session.execute(sa.update(orders).where(orders.c.order_id == order_id).values(start_claimed_at=None))


async def list_orders(session: Connection, *, status: str | None, limit: int, before_seq: int | None) -> list[Row]:
    """Newest first, keyset-paginated on ``seq`` (stable under concurrent inserts, unlike OFFSET)."""
    query = sa.select(orders).order_by(orders.c.seq.desc()).limit(limit)
    if status is not None:
        query = query.where(orders.c.status == status)
    if before_seq is not None:
        query = query.where(orders.c.seq < before_seq)
    return [dict(r._mapping) for r in await session.execute(query)]


async def quiet_order_ids(session: Connection, older_than: timedelta, limit: int) -> list[str]:
    """Orders still going whose row has not changed for ``older_than``, least recently first: up to ``limit`` of those
    PENDING or RUNNING, then up to ``limit`` AWAITING_APPROVAL. Apart, so that orders waiting for a person (for a day by
    default) never crowd the others out of a sweep."""
    ids: list[str] = []
    for statuses in ([PENDING, RUNNING], [AWAITING_APPROVAL]):
        query = (
            sa.select(orders.c.order_id)
            .where(orders.c.status.in_(statuses), orders.c.updated_at < sa.func.now() - older_than)
            .order_by(orders.c.updated_at)
            .limit(limit)
        )
        ids += (await session.execute(query)).scalars()
    return ids


async def pending_order_ids(session: Connection, limit: int = 1000) -> list[str]:
    query = sa.select(orders.c.order_id).where(orders.c.status == PENDING).order_by(orders.c.seq).limit(limit)
    return list((await session.execute(query)).scalars())


async def record_status(session: Connection, update: OrderStatusUpdate) -> bool:
    """Apply a status transition once. Idempotent, and never moves an order backwards: it applies only to a row at an
    earlier stage (``domain.stage``: PENDING, RUNNING, AWAITING_APPROVAL, RUNNING once approved, WORKFLOW_FAILED,
    finished), so a terminal status applies to any unfinished order (a WORKFLOW_FAILED one included: an operator's
    resolution ends it), WORKFLOW_FAILED to any order still going, and a late AWAITING_APPROVAL never undoes an
    approval. Returns whether the row matched (False: unknown order, or a stale or duplicate transition that changes
    nothing). A duplicate must not match: every submission or cancel of a finished order reconciles from the
    workflow output, and would rewrite the row."""
    return (await session.execute(_status_update(update))).rowcount == 1


async def record_status_returning(session: Connection, update: OrderStatusUpdate) -> Row | None:
    """``record_status``, returning the updated row (None when the transition did not apply)."""
    row = (await session.execute(_status_update(update).returning(*orders.c))).first()
    return dict(row._mapping) if row is not None else None


def _status_update(update: OrderStatusUpdate) -> sa.Update:
    """The guarded UPDATE of one status transition (see record_status)."""
    reached = stage(update)
    values: Row = {"status": update.status, "stage": reached, "updated_at": sa.func.now()}
    if update.status in SETTLED:
        values["failure"] = update.failure if update.failure is not None else sa.null()  # SQL NULL, not JSON null
    if update.total_cents is not None:
        values["total_cents"] = update.total_cents
    if update.saga is not None:
        values["saga"] = update.saga
    return sa.update(orders).where(orders.c.order_id == update.order_id, orders.c.stage < reached).values(**values)
