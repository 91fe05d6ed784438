"""Shipping use cases, each in one transaction with its idempotency record: ship, cancel, and the view."""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from common.contracts import ShipInput, StepResult, UndoInput, UndoResult
from common.db import Database
from common.idempotency import run_once
from shipping import domain
from shipping.tables import CANCELLED, SCHEDULED, processed_requests, shipments


async def ship(db: Database, request: ShipInput) -> StepResult:
    return await run_once(db, processed_requests, request, lambda session: _ship(session, request), StepResult)


async def cancel(db: Database, request: UndoInput) -> UndoResult:
    return await run_once(db, processed_requests, request, lambda session: _cancel(session, request), UndoResult)


async def _ship(session: AsyncSession, request: ShipInput) -> dict[str, Any]:
    reason = domain.undeliverable_reason(request.address.country)
    if reason is not None:
        return StepResult(ok=False, reason=reason).model_dump()
    tracking = domain.tracking_number(request.order_id)
    country = request.address.country.strip().upper()
    if await _claim(session, request.order_id, status=SCHEDULED, tracking_number=tracking, country=country):
        return StepResult(ok=True, reference=tracking).model_dump()
    status = await session.scalar(sa.select(shipments.c.status).where(shipments.c.order_id == request.order_id))
    if status == CANCELLED:
        return StepResult(ok=False, cancelled=True, reason="shipment already cancelled for this order; not shipping").model_dump()
    return StepResult(ok=True, reference=tracking).model_dump()


async def _cancel(session: AsyncSession, request: UndoInput) -> dict[str, Any]:
    if await _claim(session, request.order_id, status=CANCELLED):
        return UndoResult(outcome="nothing_to_undo", detail="no shipment found; a late ship will be refused").model_dump()
    cancelled = await session.execute(
        sa.update(shipments)
        .where(shipments.c.order_id == request.order_id, shipments.c.status == SCHEDULED)
        .values(status=CANCELLED, updated_at=sa.func.now())
        .returning(shipments.c.tracking_number)
    )
    tracking = cancelled.scalar()
    if tracking is None:
        return UndoResult(outcome="nothing_to_undo", detail="already cancelled").model_dump()
    return UndoResult(outcome="undone", detail=f"cancelled shipment {tracking}").model_dump()


async def _claim(session: AsyncSession, order_id: str, **values: Any) -> bool:
    inserted = await session.execute(
        insert(shipments)
        .values(order_id=order_id, **values)
        .on_conflict_do_nothing(index_elements=["order_id"])
        .returning(shipments.c.order_id)
    )
    return inserted.first() is not None


async def shipment_view(db: Database, order_id: str) -> dict[str, Any] | None:
    async with db.session() as session:
        row = (await session.execute(sa.select(shipments).where(shipments.c.order_id == order_id))).first()
    if row is None:
        return None
    return {"order_id": order_id, "status": row.status, "tracking_number": row.tracking_number, "country": row.country}
