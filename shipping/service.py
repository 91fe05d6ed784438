"""Shipping use cases, each in one transaction with its idempotency record: ship, cancel, and the view."""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa

from common.contracts import ShipInput, StepResult, UndoInput, UndoResult
from common.db import Database, insert_unless_present, update_row
from common.fastdb import Connection
from common.idempotency import run_once
from shipping import domain
from shipping.tables import processed_requests, shipments


async def ship(db: Database, request: ShipInput) -> StepResult:
    return await run_once(db, processed_requests, request, lambda session: _ship(session, request), StepResult)


async def cancel(db: Database, request: UndoInput) -> UndoResult:
    return await run_once(db, processed_requests, request, lambda session: _cancel(session, request), UndoResult)


async def _ship(session: Connection, request: ShipInput) -> dict[str, Any]:
    reason = domain.undeliverable_reason(request.address.country)
    if reason is not None:
        return StepResult.refused(reason).model_dump()
    tracking = domain.tracking_number(request.order_id)
    country = request.address.country.strip().upper()
    if await insert_unless_present(
        session,
        shipments,
        order_id=request.order_id,
        status=domain.SCHEDULED,
        tracking_number=tracking,
        country=country,
    ):
        return domain.ship_outcome(domain.SCHEDULED, tracking).model_dump()
    # The claim found a row: it is there.
    status = (
        await session.execute(sa.select(shipments.c.status).where(shipments.c.order_id == request.order_id))
    ).scalar_one()
    return domain.ship_outcome(status, tracking).model_dump()


async def _cancel(session: Connection, request: UndoInput) -> dict[str, Any]:
    tombstone = domain.cancel(None)
    if await insert_unless_present(session, shipments, order_id=request.order_id, status=tombstone.status):
        return tombstone.result.model_dump()
    row = (
        await session.execute(
            sa.select(shipments.c.status, shipments.c.tracking_number)
            .where(shipments.c.order_id == request.order_id)
            .with_for_update()
        )
    ).one()
    decision = domain.cancel(row.status, row.tracking_number)
    if decision.status is not None:
        await update_row(session, shipments, shipments.c.order_id == request.order_id, status=decision.status)
    return decision.result.model_dump()


async def shipment_view(db: Database, order_id: str) -> dict[str, Any] | None:
    async with db.session() as session:
        row = (await session.execute(sa.select(shipments).where(shipments.c.order_id == order_id))).first()
    if row is None:
        return None
    return {"order_id": order_id, "status": row.status, "tracking_number": row.tracking_number, "country": row.country}
