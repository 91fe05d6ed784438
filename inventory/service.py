"""Inventory use cases, each in one transaction: validate an order, reserve its stock (all or nothing),
release it (exactly once), and the catalog and reservation views."""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa

from common.contracts import (
    ReserveInventoryInput,
    StepResult,
    UndoInput,
    UndoResult,
    ValidateOrderInput,
    ValidateOrderResult,
)
from common.db import Database, insert_unless_present, update_row
from common.fastdb import Connection
from common.idempotency import run_once
from inventory import domain
from inventory.tables import processed_requests, products, reservation_items, reservations


class _OutOfStock(Exception):
    """Internal: rolls the savepoint of a partial reservation back."""


async def validate_order(db: Database, request: ValidateOrderInput, max_quantity: int) -> ValidateOrderResult:
    """Read-only, so no idempotency record: the same input always gets the same answer for the same catalog."""
    try:
        domain.check_items(request.items, max_quantity)
        async with db.session() as session:
            rows = await session.execute(
                sa.select(products.c.sku, products.c.price_cents).where(
                    products.c.sku.in_([i.sku for i in request.items])
                )
            )
            prices = {row.sku: row.price_cents for row in rows}
        priced = domain.price(request.items, prices)
    except domain.Rejected as rejection:
        return ValidateOrderResult(ok=False, reason=str(rejection))
    return ValidateOrderResult(ok=True, items=priced, total_cents=domain.total_cents(priced))


async def reserve(db: Database, request: ReserveInventoryInput, max_quantity: int) -> StepResult:
    return await run_once(
        db, processed_requests, request, lambda session: _reserve(session, request, max_quantity), StepResult
    )


async def release(db: Database, request: UndoInput) -> UndoResult:
    return await run_once(db, processed_requests, request, lambda session: _release(session, request), UndoResult)


async def _reserve(session: Connection, request: ReserveInventoryInput, max_quantity: int) -> dict[str, Any]:
    try:
        domain.check_items(request.items, max_quantity)
    except domain.Rejected as rejection:
        return StepResult.refused(str(rejection)).model_dump()
    try:
        async with session.begin_nested():  # out of stock rolls back every decrement and the reservation row
            if not await insert_unless_present(
                session, reservations, order_id=request.order_id, status=domain.RESERVED
            ):
                # The order already has a reservation row, written under another key or by a release.
                status = (
                    await session.execute(
                        sa.select(reservations.c.status).where(reservations.c.order_id == request.order_id)
                    )
                ).scalar_one()
                return domain.reserve_outcome(request.order_id, status).model_dump()
            # Sorted, so concurrent reservations lock product rows in one order and cannot deadlock.
            for item in sorted(request.items, key=lambda i: i.sku):
                await _take(session, item.sku, item.quantity)
            await session.execute(
                sa.insert(reservation_items),
                [{"order_id": request.order_id, "sku": i.sku, "quantity": i.quantity} for i in request.items],
            )
    except _OutOfStock as shortage:
        return StepResult.refused(str(shortage)).model_dump()
    return domain.reserve_outcome(request.order_id, domain.RESERVED).model_dump()


async def _take(session: Connection, sku: str, quantity: int) -> None:
    taken = await session.execute(
        sa.update(products)
        .where(products.c.sku == sku, products.c.available >= quantity)
        .values(available=products.c.available - quantity)
        .returning(products.c.sku)
    )
    if taken.first() is None:
        known = await session.scalar(sa.select(products.c.sku).where(products.c.sku == sku))
        raise _OutOfStock(f"out of stock: {sku}" if known else f"unknown sku: {sku}")


async def _release(session: Connection, request: UndoInput) -> dict[str, Any]:
    tombstone = domain.release(None)
    if await insert_unless_present(session, reservations, order_id=request.order_id, status=tombstone.status):
        return tombstone.result.model_dump()
    status = await session.scalar(
        sa.select(reservations.c.status).where(reservations.c.order_id == request.order_id).with_for_update()
    )
    items = (
        await session.execute(
            sa.select(reservation_items.c.sku, reservation_items.c.quantity)
            .where(reservation_items.c.order_id == request.order_id)
            .order_by(reservation_items.c.sku)
        )
    ).all()
    decision = domain.release(status, sum(i.quantity for i in items))
    if decision.restock:
        for item in items:
            await session.execute(
                sa.update(products)
                .where(products.c.sku == item.sku)
                .values(available=products.c.available + item.quantity)
            )
    if decision.status is not None:
        await update_row(session, reservations, reservations.c.order_id == request.order_id, status=decision.status)
    return decision.result.model_dump()


async def list_products(db: Database) -> list[dict[str, Any]]:
    async with db.session() as session:
        rows = await session.execute(sa.select(products).order_by(products.c.sku))
        return [{"sku": r.sku, "name": r.name, "price_cents": r.price_cents, "available": r.available} for r in rows]


async def reservation_view(db: Database, order_id: str) -> dict[str, Any] | None:
    async with db.session() as session:
        status = await session.scalar(sa.select(reservations.c.status).where(reservations.c.order_id == order_id))
        if status is None:
            return None
        items = await session.execute(
            sa.select(reservation_items.c.sku, reservation_items.c.quantity)
            .where(reservation_items.c.order_id == order_id)
            .order_by(reservation_items.c.sku)
        )
        return {
            "order_id": order_id,
            "status": status,
            "items": [{"sku": i.sku, "quantity": i.quantity} for i in items],
        }
