"""payment on a real PostgreSQL: charges, refunds, idempotency, tombstones, faults and its HTTP API."""

from __future__ import annotations

import asyncio
import uuid

import asyncpg
import pytest
import sqlalchemy as sa
from litestar.testing import AsyncTestClient

from common.contracts import (
    AssessRiskInput,
    ChargeInput,
    CustodyCheck,
    StepResult,
    UndoInput,
    UndoResult,
    idempotency_key,
)
from common.db import Database
from common.faults import FaultInjector, FaultSpec, NonRetryableError, TransientFaultError
from common.settings import Settings
from payment.activities import ACTIVITIES, build_activities
from payment.app import create_app
from payment.tables import ledger, processed_requests, risk_reviews

SERVICE = "payment"


def new_order() -> str:
    return f"order-{uuid.uuid4().hex[:12]}"


def charge_input(order_id: str, amount: int = 2500, token: str = "tok_visa") -> ChargeInput:
    return ChargeInput(
        order_id=order_id,
        customer_id="cust-1",
        amount_cents=amount,
        token=token,
        idempotency_key=idempotency_key(order_id, "charge"),
    )


def refund_input(order_id: str) -> UndoInput:
    return UndoInput(order_id=order_id, idempotency_key=idempotency_key(order_id, "refund"))


async def ledger_rows(db: Database, order_id: str) -> list[tuple[str, int]]:
    async with db.session() as s:
        rows = await s.execute(sa.select(ledger.c.kind, ledger.c.amount_cents).where(ledger.c.order_id == order_id))
        return [tuple(r) for r in rows]


async def test_a_visa_charge_is_approved_and_written_to_the_ledger(activities, ctx, db):
    order = new_order()
    result = await activities["charge"](ctx, charge_input(order, 1999))
    assert result.ok and result.reference.startswith("pay_")
    assert await ledger_rows(db, order) == [("charge", 1999)]


async def test_a_declined_card_is_a_business_outcome_and_moves_no_money(activities, ctx, db):
    order = new_order()
    result = await activities["charge"](ctx, charge_input(order, token="tok_declined"))
    assert result == StepResult(ok=False, reason="card declined")
    assert await ledger_rows(db, order) == []


async def test_an_unknown_token_declines_with_its_own_reason(activities, ctx):
    result = await activities["charge"](ctx, charge_input(new_order(), token="tok_mastercard"))
    assert result == StepResult(ok=False, reason="unknown test token")


async def test_a_repeated_charge_returns_the_stored_result_and_writes_one_ledger_row(activities, ctx, db):
    order = new_order()
    first = await activities["charge"](ctx, charge_input(order))
    again = await activities["charge"](ctx, charge_input(order))
    assert again == first
    assert await ledger_rows(db, order) == [("charge", 2500)]


async def test_concurrent_duplicate_charges_charge_once(activities, ctx, db):
    order = new_order()
    results = await asyncio.gather(*[activities["charge"](ctx, charge_input(order)) for _ in range(8)])
    assert all(r == results[0] and r.ok for r in results)
    assert await ledger_rows(db, order) == [("charge", 2500)]


async def test_the_same_key_with_a_different_request_is_refused_permanently(activities, ctx):
    order = new_order()
    await activities["charge"](ctx, charge_input(order, 100))
    with pytest.raises(NonRetryableError, match="different request"):
        await activities["charge"](ctx, charge_input(order, 200))


async def test_a_non_positive_amount_is_refused_without_a_trace(activities, ctx, db):
    order = new_order()
    with pytest.raises(NonRetryableError, match="positive"):
        await activities["charge"](ctx, charge_input(order, 0))
    async with db.session() as s:
        assert (
            await s.scalar(
                sa.select(sa.func.count())
                .select_from(processed_requests)
                .where(processed_requests.c.idempotency_key == idempotency_key(order, "charge"))
            )
            == 0
        )


async def test_a_refund_returns_exactly_what_was_charged_once(activities, ctx, db):
    order = new_order()
    await activities["charge"](ctx, charge_input(order, 4321))
    first = await activities["refund"](ctx, refund_input(order))
    again = await activities["refund"](ctx, refund_input(order))
    other_key = await activities["refund"](ctx, UndoInput(order_id=order, idempotency_key=f"{order}:refund-2"))
    assert first == again == UndoResult(outcome="undone", detail="refunded 4321 cents")
    assert other_key.outcome == "nothing_to_undo"
    assert sorted(await ledger_rows(db, order)) == [("charge", 4321), ("refund", 4321)]


async def test_concurrent_refunds_refund_once(activities, ctx, db):
    order = new_order()
    await activities["charge"](ctx, charge_input(order, 700))
    keys = [f"{order}:refund-{i}" for i in range(6)]
    results = await asyncio.gather(
        *[activities["refund"](ctx, UndoInput(order_id=order, idempotency_key=k)) for k in keys]
    )
    assert [r.outcome for r in results].count("undone") == 1
    assert sorted(await ledger_rows(db, order)) == [("charge", 700), ("refund", 700)]


async def test_a_refund_of_a_declined_charge_moves_no_money(activities, ctx, db):
    order = new_order()
    await activities["charge"](ctx, charge_input(order, token="tok_declined"))
    result = await activities["refund"](ctx, refund_input(order))
    assert result.outcome == "nothing_to_undo"
    assert await ledger_rows(db, order) == []


async def test_a_refund_before_the_charge_leaves_a_tombstone_that_cancels_the_late_charge(activities, ctx, db):
    order = new_order()
    undo = await activities["refund"](ctx, refund_input(order))
    late = await activities["charge"](ctx, charge_input(order))
    assert undo.outcome == "nothing_to_undo"
    assert late.ok is False and late.cancelled is True
    assert await ledger_rows(db, order) == []


async def test_the_ledger_refuses_updates_and_deletes(activities, ctx, db):
    order = new_order()
    await activities["charge"](ctx, charge_input(order))
    with pytest.raises(asyncpg.exceptions.RaiseError, match="append-only"):  # the trigger's RAISE
        async with db.transaction() as s:
            await s.execute(sa.update(ledger).where(ledger.c.order_id == order).values(amount_cents=1))


async def test_an_error_fault_fails_permanently_and_charges_nothing(activities, ctx, db, faults):
    order = new_order()
    await faults.set("charge", FaultSpec(mode="error", order_id=order))
    try:
        with pytest.raises(NonRetryableError):
            await activities["charge"](ctx, charge_input(order))
        other = await activities["charge"](ctx, charge_input(new_order()))  # the fault is limited to `order`
        assert other.ok
    finally:
        await faults.clear()
    assert await ledger_rows(db, order) == []


async def test_a_transient_fault_fails_count_times_then_the_charge_succeeds_once(activities, ctx, db, faults):
    order = new_order()
    await faults.set("charge", FaultSpec(mode="transient", count=2))
    try:
        for _ in range(2):
            with pytest.raises(TransientFaultError):
                await activities["charge"](ctx, charge_input(order))
        assert (await activities["charge"](ctx, charge_input(order))).ok
        assert (await faults.list())[0].remaining == 0
    finally:
        await faults.clear()
    assert await ledger_rows(db, order) == [("charge", 2500)]


async def test_concurrent_transient_faults_fire_exactly_count_times(activities, ctx, faults):
    await faults.set("refund", FaultSpec(mode="transient", count=3))
    try:
        outcomes = await asyncio.gather(
            *[activities["refund"](ctx, refund_input(new_order())) for _ in range(10)], return_exceptions=True
        )
    finally:
        await faults.clear()
    assert sum(isinstance(o, TransientFaultError) for o in outcomes) == 3


async def test_a_delay_fault_sleeps_before_the_effect(db, ctx):
    slept: list[float] = []

    async def sleep(seconds: float) -> None:
        slept.append(seconds)

    faults = FaultInjector(db, ACTIVITIES, enabled=True, sleep=sleep)
    await faults.set("charge", FaultSpec(mode="delay", delay_ms=250, count=1))
    try:
        activities = build_activities(db, faults)
        await activities["charge"](ctx, charge_input(new_order()))
        await activities["charge"](ctx, charge_input(new_order()))
    finally:
        await faults.clear()
    assert slept == [0.25]


async def test_crash_before_exits_70_before_charging(db, ctx, fake_exit, exits):
    faults = FaultInjector(db, ACTIVITIES, enabled=True, exit=fake_exit)
    order = new_order()
    await faults.set("charge", FaultSpec(mode="crash_before", count=1))
    try:
        with pytest.raises(SystemExit):
            await build_activities(db, faults)["charge"](ctx, charge_input(order))
        assert exits == [70]
        assert await ledger_rows(db, order) == []
        # The firing was committed before the crash: the restarted app charges normally.
        assert (await build_activities(db, faults)["charge"](ctx, charge_input(order))).ok
    finally:
        await faults.clear()


async def test_crash_after_exits_70_after_the_charge_committed_and_the_retry_returns_it(db, ctx, fake_exit, exits):
    faults = FaultInjector(db, ACTIVITIES, enabled=True, exit=fake_exit)
    order = new_order()
    await faults.set("charge", FaultSpec(mode="crash_after", order_id=order))
    try:
        with pytest.raises(SystemExit):
            await build_activities(db, faults)["charge"](ctx, charge_input(order))
        assert exits == [70]
        assert await ledger_rows(db, order) == [("charge", 2500)]
        stored = next(f for f in await faults.list() if f.activity == "charge")
        assert (stored.mode, stored.remaining, stored.fired) == ("crash_after", None, 1)
    finally:
        await faults.clear()


async def test_disabled_faults_never_fire(db, ctx):
    armed = FaultInjector(db, ACTIVITIES, enabled=True)
    await armed.set("charge", FaultSpec(mode="error"))
    try:
        disabled = FaultInjector(db, ACTIVITIES, enabled=False)
        assert (await build_activities(db, disabled)["charge"](ctx, charge_input(new_order()))).ok
    finally:
        await armed.clear()


# --- HTTP ------------------------------------------------------------------------------------------------


def app_for(db: Database, faults_enabled: bool = True):
    # Litestar's in-process client is not on loopback (its address is "testclient"): open the fault API to it.
    return create_app(
        Settings(app_id="payment", database_url=db.url, faults_enabled=faults_enabled, faults_allow_remote=True)
    )


async def test_get_payment_shows_charge_and_refund_entries(activities, ctx, db):
    order = new_order()
    await activities["charge"](ctx, charge_input(order, 1234))
    await activities["refund"](ctx, refund_input(order))
    async with AsyncTestClient(app=app_for(db)) as client:
        response = await client.get(f"/payments/{order}")
    body = response.json()
    assert response.status_code == 200
    assert (body["charged_cents"], body["refunded_cents"], body["status"]) == (1234, 1234, "REFUNDED")
    assert [(e["kind"], e["amount_cents"]) for e in body["entries"]] == [("charge", 1234), ("refund", 1234)]


async def test_get_payment_of_an_unknown_order_is_a_404_problem(db):
    async with AsyncTestClient(app=app_for(db)) as client:
        response = await client.get("/payments/nope")
    assert response.status_code == 404
    assert response.headers["content-type"].startswith("application/problem+json")
    assert response.json()["detail"] == "no payment for order 'nope'"


async def test_healthz_says_ok(db):
    async with AsyncTestClient(app=app_for(db)) as client:
        response = await client.get("/healthz")
    assert (response.status_code, response.text) == (200, "ok")


# --- the risk assessment ---------------------------------------------------------------------------------------

HELD = CustodyCheck(True, ["started by order_saga on order-api"])


def assess_input(order_id: str, customer: str, amount: int, custody: CustodyCheck = HELD) -> AssessRiskInput:
    return AssessRiskInput(order_id, customer, amount, custody, idempotency_key(order_id, "assess_risk"))


async def test_a_first_order_is_weighed_against_a_lower_threshold_until_the_customer_has_a_charge(activities, ctx):
    customer = f"cust-{uuid.uuid4().hex[:8]}"
    first = await activities["assess_risk"](ctx, assess_input(new_order(), customer, 35_000))
    assert (first.decision, first.facts) == (
        "review",
        {"first_order": True, "charged_orders": 0, "declined_payments": 0},
    )
    declined = new_order()
    await activities["charge"](ctx, ChargeInput(declined, customer, 1000, "tok_declined", f"{declined}:charge"))
    charged = new_order()
    await activities["charge"](ctx, ChargeInput(charged, customer, 1000, "tok_visa", f"{charged}:charge"))

    later = await activities["assess_risk"](ctx, assess_input(new_order(), customer, 35_000))
    assert (later.decision, later.facts) == (
        "approve",
        {"first_order": False, "charged_orders": 1, "declined_payments": 1},
    )


async def test_an_assessment_is_made_once_per_order_and_a_repeat_answers_what_was_decided(activities, ctx, db):
    order = new_order()
    request = assess_input(order, f"cust-{uuid.uuid4().hex[:8]}", 60_000)
    results = await asyncio.gather(*[activities["assess_risk"](ctx, request) for _ in range(4)])
    assert {r.decision for r in results} == {"review"}
    async with db.session() as s:
        assert (await s.execute(sa.select(sa.func.count()).where(risk_reviews.c.order_id == order))).scalar_one() == 1


async def test_get_review_shows_the_decision_its_reasons_and_the_custody_check(activities, ctx, db):
    order = new_order()
    broken = CustodyCheck(False, [], "asked to approve 0.01, but validate_order priced the order at 12.00")
    await activities["assess_risk"](ctx, assess_input(order, "cust-9", 1, broken))
    async with AsyncTestClient(app=app_for(db)) as client:
        response = await client.get(f"/reviews/{order}")
        missing = await client.get("/reviews/nope")
    body = response.json()
    assert response.status_code == 200
    assert (body["decision"], body["amount_cents"], body["customer_id"]) == ("reject", 1, "cust-9")
    assert body["reason"] == f"chain of custody broken: {broken.reason}"
    assert body["custody"] == {"ok": False, "checks": [], "reason": broken.reason}
    assert missing.status_code == 404 and missing.json()["detail"] == "no risk review of order 'nope'"


async def test_an_error_fault_on_assess_risk_fails_it_permanently_and_records_nothing(activities, ctx, db, faults):
    order = new_order()
    await faults.set("assess_risk", FaultSpec(mode="error", order_id=order))
    with pytest.raises(NonRetryableError):
        await activities["assess_risk"](ctx, assess_input(order, "cust-1", 100))
    async with db.session() as s:
        assert (await s.execute(sa.select(risk_reviews).where(risk_reviews.c.order_id == order))).first() is None
