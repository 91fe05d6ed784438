"""notification on a real PostgreSQL: each message recorded once per key, faults, and its API."""

from __future__ import annotations

import asyncio
import uuid

import pytest
from litestar.testing import AsyncTestClient

from common.contracts import NotifyInput, NotifyResult
from common.db import Database
from common.faults import FaultSpec, NonRetryableError, TransientFaultError
from common.settings import Settings
from notification.app import create_app

SERVICE = "notification"


def new_order() -> str:
    return f"order-{uuid.uuid4().hex[:12]}"


def notify_input(order: str, kind: str = "order_confirmed") -> NotifyInput:
    return NotifyInput(order_id=order, email="ada@example.com", kind=kind, idempotency_key=f"{order}:notify:{kind}")


async def listed(db: Database, order: str) -> list[dict]:
    async with AsyncTestClient(app=create_app(Settings(app_id="notification", database_url=db.url))) as client:
        response = await client.get("/notifications", params={"order_id": order})
    assert response.status_code == 200
    return response.json()


async def test_a_notification_is_recorded_as_sent_by_email(activities, ctx, db):
    order = new_order()
    result = await activities["notify"](ctx, notify_input(order))
    assert result == NotifyResult(sent=True, channel="email", detail="order_confirmed sent to ada@example.com")
    [sent] = await listed(db, order)
    assert (sent["order_id"], sent["kind"], sent["channel"], sent["status"]) == (
        order,
        "order_confirmed",
        "email",
        "sent",
    )


async def test_the_listing_says_what_the_customer_was_told(activities, ctx, db):
    order = new_order()
    told = "Your payment was declined, so your order has not been placed."
    await activities["notify"](ctx, NotifyInput(order, "ada@example.com", "order_failed", told, f"{order}:notify"))
    [sent] = await listed(db, order)
    assert sent["message"] == told


async def test_repeated_and_concurrent_notifications_are_sent_once(activities, ctx, db):
    order = new_order()
    results = await asyncio.gather(*[activities["notify"](ctx, notify_input(order)) for _ in range(6)])
    results.append(await activities["notify"](ctx, notify_input(order)))
    assert all(r == results[0] for r in results)
    assert len(await listed(db, order)) == 1


async def test_different_kinds_for_one_order_are_different_messages(activities, ctx, db):
    order = new_order()
    await activities["notify"](ctx, notify_input(order, "order_confirmed"))
    await activities["notify"](ctx, notify_input(order, "order_failed"))
    assert [n["kind"] for n in await listed(db, order)] == ["order_confirmed", "order_failed"]


async def test_a_second_message_of_a_kind_under_another_key_is_not_sent(activities, ctx, db):
    # The saga told the customer the order failed; an operator's resolution then tells them again, under its own key.
    order = new_order()
    first = await activities["notify"](
        ctx, NotifyInput(order, "ada@example.com", "order_failed", "a", f"{order}:notify")
    )
    again = await activities["notify"](
        ctx, NotifyInput(order, "ada@example.com", "order_failed", "b", f"{order}:notify-resolution")
    )
    assert first.sent is True
    assert again == NotifyResult(sent=False, channel="email", detail="order_failed was already sent for this order")
    assert [(n["kind"], n["message"]) for n in await listed(db, order)] == [("order_failed", "a")]


async def test_a_notification_without_a_key_is_refused_permanently(activities, ctx, db):
    order = new_order()
    with pytest.raises(NonRetryableError, match="idempotency_key"):
        await activities["notify"](ctx, NotifyInput(order_id=order, email="ada@example.com", kind="order_confirmed"))
    assert await listed(db, order) == []


async def test_an_error_fault_makes_notify_fail_and_send_nothing(activities, ctx, db, faults):
    order = new_order()
    await faults.set("notify", FaultSpec(mode="error"))
    try:
        for _ in range(2):  # no count: fires every time until cleared
            with pytest.raises(NonRetryableError):
                await activities["notify"](ctx, notify_input(order))
    finally:
        await faults.clear("notify")
    assert await listed(db, order) == []
    assert (await activities["notify"](ctx, notify_input(order))).sent


async def test_a_transient_fault_limited_to_one_order_leaves_other_orders_alone(activities, ctx, db, faults):
    target, other = new_order(), new_order()
    await faults.set("notify", FaultSpec(mode="transient", count=1, order_id=target))
    try:
        assert (await activities["notify"](ctx, notify_input(other))).sent
        with pytest.raises(TransientFaultError):
            await activities["notify"](ctx, notify_input(target))
        assert (await activities["notify"](ctx, notify_input(target))).sent
    finally:
        await faults.clear()


async def test_listing_notifications_needs_an_order_id(db):
    async with AsyncTestClient(app=create_app(Settings(app_id="notification", database_url=db.url))) as client:
        response = await client.get("/notifications")
    assert response.status_code == 400
    assert response.headers["content-type"].startswith("application/problem+json")
