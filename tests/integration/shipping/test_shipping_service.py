"""shipping on a real PostgreSQL: scheduling, undeliverable addresses, cancellation, tombstones and its API."""

from __future__ import annotations

import asyncio
import uuid

import pytest
import sqlalchemy as sa
from litestar.testing import AsyncTestClient

from common.contracts import Address, Item, ShipInput, StepResult, UndoInput, UndoResult
from common.db import Database
from common.faults import FaultSpec, NonRetryableError
from common.settings import Settings
from shipping.app import create_app
from shipping.domain import tracking_number
from shipping.tables import shipments

SERVICE = "shipping"


def new_order() -> str:
    return f"order-{uuid.uuid4().hex[:12]}"


def ship_input(order: str, country: str = "NL") -> ShipInput:
    address = Address(name="Ada", line1="Main St 1", city="Utrecht", postal_code="3511", country=country)
    return ShipInput(order_id=order, address=address, items=[Item("SKU-MUG", 1)], idempotency_key=f"{order}:ship")


def cancel_input(order: str, key: str | None = None) -> UndoInput:
    return UndoInput(order_id=order, idempotency_key=key or f"{order}:cancel_shipment")


async def shipment_count(db: Database, order: str) -> int:
    async with db.session() as s:
        return await s.scalar(sa.select(sa.func.count()).select_from(shipments).where(shipments.c.order_id == order))


async def get(db: Database, path: str):
    async with AsyncTestClient(app=create_app(Settings(app_id="shipping", database_url=db.url))) as client:
        return await client.get(path)


async def test_shipping_schedules_a_shipment_with_a_tracking_number_derived_from_the_order(activities, ctx, db):
    order = new_order()
    result = await activities["ship"](ctx, ship_input(order))
    assert result == StepResult(ok=True, reference=tracking_number(order))
    body = (await get(db, f"/shipments/{order}")).json()
    assert (body["status"], body["tracking_number"]) == ("SCHEDULED", tracking_number(order))


async def test_antarctica_is_undeliverable_and_nothing_is_scheduled(activities, ctx, db):
    order = new_order()
    result = await activities["ship"](ctx, ship_input(order, country="AQ"))
    assert result.ok is False and result.reason.startswith("undeliverable: ")
    assert await shipment_count(db, order) == 0


async def test_concurrent_duplicate_ship_calls_schedule_one_shipment(activities, ctx, db):
    order = new_order()
    results = await asyncio.gather(*[activities["ship"](ctx, ship_input(order)) for _ in range(8)])
    assert all(r == results[0] and r.ok for r in results)
    assert await shipment_count(db, order) == 1


async def test_cancelling_a_shipment_marks_it_cancelled_once(activities, ctx, db):
    order = new_order()
    await activities["ship"](ctx, ship_input(order))
    first = await activities["cancel_shipment"](ctx, cancel_input(order))
    again = await activities["cancel_shipment"](ctx, cancel_input(order))
    other = await activities["cancel_shipment"](ctx, cancel_input(order, key=f"{order}:cancel-2"))
    assert first == again == UndoResult(outcome="undone", detail=f"cancelled shipment {tracking_number(order)}")
    assert other.outcome == "nothing_to_undo"
    assert (await get(db, f"/shipments/{order}")).json()["status"] == "CANCELLED"


async def test_a_cancel_before_shipping_cancels_the_late_ship(activities, ctx, db):
    order = new_order()
    undo = await activities["cancel_shipment"](ctx, cancel_input(order))
    late = await activities["ship"](ctx, ship_input(order))
    assert undo.outcome == "nothing_to_undo"
    assert (late.ok, late.cancelled) == (False, True)
    body = (await get(db, f"/shipments/{order}")).json()
    assert (body["status"], body["tracking_number"]) == ("CANCELLED", None)


async def test_an_unknown_shipment_is_a_404_problem(db):
    response = await get(db, "/shipments/never")
    assert response.status_code == 404
    assert response.headers["content-type"].startswith("application/problem+json")


async def test_an_error_fault_on_cancel_fails_permanently_and_cancels_nothing(activities, ctx, db, faults):
    order = new_order()
    await activities["ship"](ctx, ship_input(order))
    await faults.set("cancel_shipment", FaultSpec(mode="error", count=1))
    try:
        with pytest.raises(NonRetryableError):
            await activities["cancel_shipment"](ctx, cancel_input(order))
        assert (await get(db, f"/shipments/{order}")).json()["status"] == "SCHEDULED"
        assert (await activities["cancel_shipment"](ctx, cancel_input(order))).outcome == "undone"  # count=1 used up
    finally:
        await faults.clear()
