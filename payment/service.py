"""Payment use cases, each in one transaction with its idempotency record: charge, refund, a risk assessment, and
the views."""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa

from common.contracts import AssessRiskInput, ChargeInput, RiskAssessment, StepResult, UndoInput, UndoResult
from common.db import Database, insert_unless_present, update_row
from common.fastdb import Connection
from common.idempotency import run_once
from payment import domain
from payment.tables import ledger, payments, processed_requests, risk_reviews


async def charge(db: Database, request: ChargeInput) -> StepResult:
    domain.check_amount(request.amount_cents)
    return await run_once(db, processed_requests, request, lambda session: _charge(session, request), StepResult)


async def refund(db: Database, request: UndoInput) -> UndoResult:
    return await run_once(db, processed_requests, request, lambda session: _refund(session, request), UndoResult)


async def assess_risk(db: Database, request: AssessRiskInput, limits: domain.RiskLimits) -> RiskAssessment:
    """Weigh an order against its customer's payment history and the custody check its review made, and record
    the decision with its reasons. Once per order: a repeat (a redelivered activity) answers what was decided."""
    return await run_once(
        db, processed_requests, request, lambda session: _assess(session, request, limits), RiskAssessment
    )


async def _assess(session: Connection, request: AssessRiskInput, limits: domain.RiskLimits) -> dict[str, Any]:
    history = await _history(session, request.customer_id, request.order_id)
    assessment = domain.assess(request.amount_cents, history, request.custody, limits)
    if not await insert_unless_present(
        session,
        risk_reviews,
        order_id=request.order_id,
        customer_id=request.customer_id,
        amount_cents=request.amount_cents,
        decision=assessment.decision,
        reason=assessment.reason,
        facts=assessment.facts,
        custody=request.custody.model_dump(),
    ):
        row = (await session.execute(sa.select(risk_reviews).where(risk_reviews.c.order_id == request.order_id))).one()
        assessment = RiskAssessment(row.decision, row.reason, row.facts)  # the first review of the order stands
    return assessment.model_dump()


async def _history(session: Connection, customer_id: str, order_id: str) -> domain.PaymentHistory:
    """The customer's other payments: how many orders stayed charged, how many payments were declined."""
    counted = await session.execute(
        sa.select(payments.c.status, sa.func.count())
        .where(payments.c.customer_id == customer_id, payments.c.order_id != order_id)
        .group_by(payments.c.status)
    )
    by_status = {status: count for status, count in counted}
    return domain.PaymentHistory(by_status.get(domain.CHARGED, 0), by_status.get(domain.DECLINED, 0))


async def review_view(db: Database, order_id: str) -> dict[str, Any] | None:
    """The risk review of an order as payment recorded it, or None if it was never reviewed."""
    async with db.session() as session:
        row = (await session.execute(sa.select(risk_reviews).where(risk_reviews.c.order_id == order_id))).first()
    if row is None:
        return None
    return {str(name): value for name, value in row._mapping.items()}  # plain str keys (not SQLAlchemy's quoted_name)


async def _charge(session: Connection, request: ChargeInput) -> dict[str, Any]:
    first = domain.first_charge(request.order_id, request.token)
    if await insert_unless_present(
        session,
        payments,
        order_id=request.order_id,
        status=first.status,
        payment_id=first.payment_id,
        customer_id=request.customer_id,
        decline_reason=first.decline_reason,
    ):
        if first.status == domain.CHARGED:
            await session.execute(
                sa.insert(ledger).values(order_id=request.order_id, kind="charge", amount_cents=request.amount_cents)
            )
        return domain.charge_outcome(first).model_dump()
    # The order already has a payment row: written by an earlier charge (another key) or by a refund.
    return domain.charge_outcome(await _locked(session, request.order_id)).model_dump()


async def _refund(session: Connection, request: UndoInput) -> dict[str, Any]:
    tombstone = domain.refund(None)
    if await insert_unless_present(session, payments, order_id=request.order_id, status=tombstone.status):
        return tombstone.result.model_dump()
    decision = domain.refund(await _locked(session, request.order_id), await _net_cents(session, request.order_id))
    # The ledger's unique index makes a second refund impossible, whatever runs concurrently.
    if decision.refund_cents > 0:
        await session.execute(
            sa.insert(ledger).values(order_id=request.order_id, kind="refund", amount_cents=decision.refund_cents)
        )
    if decision.status is not None:
        await update_row(session, payments, payments.c.order_id == request.order_id, status=decision.status)
    return decision.result.model_dump()


async def _locked(session: Connection, order_id: str) -> domain.Payment:
    row = (await session.execute(sa.select(payments).where(payments.c.order_id == order_id).with_for_update())).one()
    return domain.Payment(row.status, row.payment_id, row.decline_reason)


async def _net_cents(session: Connection, order_id: str) -> int:
    signed = sa.case((ledger.c.kind == "charge", ledger.c.amount_cents), else_=-ledger.c.amount_cents)
    total = await session.execute(
        sa.select(sa.func.coalesce(sa.func.sum(signed), 0)).where(ledger.c.order_id == order_id)
    )
    return int(total.scalar_one())


async def payment_view(db: Database, order_id: str) -> dict[str, Any] | None:
    """The payment of an order with its ledger entries, or None if the order never reached payment."""
    async with db.session() as session:
        payment = (await session.execute(sa.select(payments).where(payments.c.order_id == order_id))).first()
        if payment is None:
            return None
        entries = (
            await session.execute(
                sa.select(ledger.c.kind, ledger.c.amount_cents, ledger.c.created_at)
                .where(ledger.c.order_id == order_id)
                .order_by(ledger.c.id)
            )
        ).all()
    return {
        "order_id": order_id,
        "status": payment.status,
        "payment_id": payment.payment_id,
        "charged_cents": sum(e.amount_cents for e in entries if e.kind == "charge"),
        "refunded_cents": sum(e.amount_cents for e in entries if e.kind == "refund"),
        "entries": [{"kind": e.kind, "amount_cents": e.amount_cents, "created_at": e.created_at} for e in entries],
    }
