"""inventory on a real PostgreSQL: validation and pricing, guarded stock, reservations, releases and its API."""

from __future__ import annotations

import asyncio
import uuid

import pytest
import sqlalchemy as sa
from litestar.testing import AsyncTestClient

from common.contracts import Item, PricedItem, ReserveInventoryInput, StepResult, UndoInput, ValidateOrderInput
from common.db import Database
from common.faults import FaultSpec, NonRetryableError, TransientFaultError
from common.settings import Settings
from inventory.app import create_app
from inventory.tables import products, reservation_items

MAX_QUANTITY = 10

SERVICE = "inventory"
BUILD_ARGS = (MAX_QUANTITY,)


async def new_product(db: Database, stock: int, price: int = 1000) -> str:
    sku = f"TEST-{uuid.uuid4().hex[:8].upper()}"
    async with db.transaction() as s:
        await s.execute(sa.insert(products).values(sku=sku, name="test product", price_cents=price, available=stock))
    return sku


async def available(db: Database, sku: str) -> int:
    async with db.session() as s:
        return await s.scalar(sa.select(products.c.available).where(products.c.sku == sku))


def new_order() -> str:
    return f"order-{uuid.uuid4().hex[:12]}"


def reserve_input(order: str, *items: tuple[str, int], key: str | None = None) -> ReserveInventoryInput:
    return ReserveInventoryInput(
        order_id=order,
        items=[Item(sku=s, quantity=q) for s, q in items],
        idempotency_key=key or f"{order}:reserve_inventory",
    )


def release_input(order: str, key: str | None = None) -> UndoInput:
    return UndoInput(order_id=order, idempotency_key=key or f"{order}:release_inventory")


async def test_the_demo_catalog_is_seeded_with_a_low_stock_product(db):
    async with AsyncTestClient(app=create_app(Settings(app_id="inventory", database_url=db.url))) as client:
        catalog = {p["sku"]: p for p in (await client.get("/products")).json()}
    assert len([sku for sku in catalog if not sku.startswith("TEST-")]) >= 8
    assert catalog["SKU-MUG"]["price_cents"] == 1200
    assert catalog["SKU-LAMP"]["available"] == 3


async def test_validation_prices_items_from_the_catalog(activities, ctx, db):
    cheap = await new_product(db, 5, price=250)
    result = await activities["validate_order"](
        ctx,
        ValidateOrderInput(order_id=new_order(), items=[Item(sku="SKU-MUG", quantity=2), Item(sku=cheap, quantity=3)]),
    )
    assert result.ok
    assert result.items == [PricedItem("SKU-MUG", 2, 1200), PricedItem(cheap, 3, 250)]
    assert result.total_cents == 2 * 1200 + 3 * 250


@pytest.mark.parametrize(
    ("items", "reason"),
    [
        ([], "an order needs at least one item"),
        ([("SKU-NOPE", 1)], "unknown sku: SKU-NOPE"),
        ([("SKU-MUG", 0)], "quantity must be a positive whole number: SKU-MUG"),
        ([("SKU-MUG", -2)], "quantity must be a positive whole number: SKU-MUG"),
        ([("SKU-MUG", MAX_QUANTITY + 1)], f"quantity over the limit of {MAX_QUANTITY}: SKU-MUG"),
        ([("SKU-MUG", 1), ("SKU-MUG", 2)], "duplicate sku: SKU-MUG"),
    ],
)
async def test_validation_rejects_bad_orders_with_a_reason(activities, ctx, items, reason):
    result = await activities["validate_order"](
        ctx, ValidateOrderInput(order_id=new_order(), items=[Item(sku=s, quantity=q) for s, q in items])
    )
    assert (result.ok, result.reason, result.items, result.total_cents) == (False, reason, [], 0)


async def test_a_reservation_takes_stock_and_a_repeat_takes_it_once(activities, ctx, db):
    sku, order = await new_product(db, 10), new_order()
    first = await activities["reserve_inventory"](ctx, reserve_input(order, (sku, 3)))
    again = await activities["reserve_inventory"](ctx, reserve_input(order, (sku, 3)))
    assert first == again == StepResult(ok=True, reference=order)
    assert await available(db, sku) == 7
    async with db.session() as s:
        assert (
            await s.scalar(
                sa.select(sa.func.count()).select_from(reservation_items).where(reservation_items.c.order_id == order)
            )
            == 1
        )


async def test_concurrent_duplicate_reservations_take_stock_once(activities, ctx, db):
    sku, order = await new_product(db, 10), new_order()
    results = await asyncio.gather(
        *[activities["reserve_inventory"](ctx, reserve_input(order, (sku, 2))) for _ in range(8)]
    )
    assert all(r.ok for r in results)
    assert await available(db, sku) == 8


async def test_twenty_concurrent_reservations_against_stock_five_succeed_exactly_five_times(activities, ctx, db):
    sku = await new_product(db, 5)
    results = await asyncio.gather(
        *[activities["reserve_inventory"](ctx, reserve_input(new_order(), (sku, 1))) for _ in range(20)]
    )
    assert sum(r.ok for r in results) == 5
    assert {r.reason for r in results if not r.ok} == {f"out of stock: {sku}"}
    assert await available(db, sku) == 0


async def test_a_reservation_is_all_or_nothing(activities, ctx, db):
    plenty, scarce, order = await new_product(db, 50), await new_product(db, 1), new_order()
    result = await activities["reserve_inventory"](ctx, reserve_input(order, (plenty, 5), (scarce, 2)))
    assert result == StepResult(ok=False, reason=f"out of stock: {scarce}")
    assert (await available(db, plenty), await available(db, scarce)) == (50, 1)
    async with AsyncTestClient(app=create_app(Settings(app_id="inventory", database_url=db.url))) as client:
        assert (await client.get(f"/reservations/{order}")).status_code == 404


async def test_a_release_returns_the_stock_exactly_once(activities, ctx, db):
    sku, order = await new_product(db, 10), new_order()
    await activities["reserve_inventory"](ctx, reserve_input(order, (sku, 4)))
    results = await asyncio.gather(
        *[activities["release_inventory"](ctx, release_input(order, key=f"{order}:release-{i}")) for i in range(5)]
    )
    repeat = await activities["release_inventory"](ctx, release_input(order, key=f"{order}:release-0"))
    assert [r.outcome for r in results].count("undone") == 1
    assert repeat == results[0]
    assert await available(db, sku) == 10


async def test_a_release_before_the_reservation_cancels_the_late_reservation(activities, ctx, db):
    sku, order = await new_product(db, 10), new_order()
    undo = await activities["release_inventory"](ctx, release_input(order))
    late = await activities["reserve_inventory"](ctx, reserve_input(order, (sku, 4)))
    assert undo.outcome == "nothing_to_undo"
    assert (late.ok, late.cancelled) == (False, True)
    assert await available(db, sku) == 10


async def test_the_same_key_for_a_different_reservation_is_refused(activities, ctx, db):
    sku, order = await new_product(db, 10), new_order()
    await activities["reserve_inventory"](ctx, reserve_input(order, (sku, 1)))
    with pytest.raises(NonRetryableError):
        await activities["reserve_inventory"](ctx, reserve_input(order, (sku, 2)))
    assert await available(db, sku) == 9


async def test_get_reservation_shows_status_and_items(activities, ctx, db):
    sku, order = await new_product(db, 10), new_order()
    await activities["reserve_inventory"](ctx, reserve_input(order, (sku, 2)))
    async with AsyncTestClient(app=create_app(Settings(app_id="inventory", database_url=db.url))) as client:
        reserved = (await client.get(f"/reservations/{order}")).json()
        await activities["release_inventory"](ctx, release_input(order))
        released = (await client.get(f"/reservations/{order}")).json()
        missing = await client.get("/reservations/never")
    assert reserved == {"order_id": order, "status": "RESERVED", "items": [{"sku": sku, "quantity": 2}]}
    assert released["status"] == "RELEASED"
    assert missing.status_code == 404 and missing.headers["content-type"].startswith("application/problem+json")


async def test_a_transient_fault_on_reserve_fails_then_reserves_once(activities, ctx, db, faults):
    sku, order = await new_product(db, 10), new_order()
    await faults.set("reserve_inventory", FaultSpec(mode="transient"))
    try:
        with pytest.raises(TransientFaultError):
            await activities["reserve_inventory"](ctx, reserve_input(order, (sku, 1)))
        assert await available(db, sku) == 10
        assert (await activities["reserve_inventory"](ctx, reserve_input(order, (sku, 1)))).ok
    finally:
        await faults.clear()
    assert await available(db, sku) == 9
