"""The order saga (`order_saga`, instance ID = order ID): the whole business process of one order.

Deterministic orchestration only: every effect is an activity or a child workflow on the app that owns it. Cancel
is checked before and after each forward step, never raced against it, so an undo never runs while its step is in
flight; the one wait on a person is raced against it. Cancel interleavings: before the workflow starts (the engine
keeps the event) or before step k → steps < k are undone; while step k is in flight → k finishes (or runs out of
retries), then k's undo runs with the rest; while awaiting approval → the wait ends, the reservation is released;
after ship finished, during the unwind or the notification → too late, changes nothing; a second cancel → no-op.
"""

from __future__ import annotations

from datetime import timedelta
from functools import partial
from typing import Any

from dapr.ext import workflow as wf

from common.contracts import (
    CANCEL_SHIPMENT,
    CHARGE,
    INVENTORY,
    NOTIFICATION,
    NOTIFY,
    PAYMENT,
    REFUND,
    RELEASE_INVENTORY,
    RESERVE_INVENTORY,
    REVIEW,
    RISK_REVIEW,
    SHIP,
    SHIPPING,
    VALIDATE_ORDER,
    ChargeInput,
    NotifyInput,
    NotifyResult,
    ReserveInventoryInput,
    RiskDecision,
    RiskReviewInput,
    ShipInput,
    StepResult,
    UndoInput,
    ValidateOrderInput,
    ValidateOrderResult,
    idempotency_key,
)
from common.outcomes import SagaAborted
from common.saga import Saga, Steps, retry_policy
from orchestrator.domain import (
    APPROVAL,
    APPROVAL_EVENT,
    AWAITING_APPROVAL,
    CANCEL_EVENT,
    COMPLETED,
    RECORD_ORDER_STATUS,
    RUNNING,
    OrderSagaInput,
    OrderStatusUpdate,
    conclusion,
    customer_message,
)

# Patches (workflow versioning): a saga started since a change takes the new path; an older one, replayed, keeps the
# path its history records. Remove each once no saga started before it is running.
RUNNING_RECORDED_BY_API = "running-recorded-by-order-api"  # the order-api records RUNNING itself, not the saga
RISK_REVIEW_BEFORE_CHARGE = "risk-review-before-charge"  # payment's risk review, and maybe a person, before charge
# The cancel event is polled at each check (no sentinel timer), and the order-api records the terminal status from the
# saga's output (no final record_order_status activity: one turn and one activity fewer).
CANCEL_POLLED_FINAL_BY_API = "cancel-polled-final-status-by-order-api"


def order_saga(ctx: wf.DaprWorkflowContext, payload: dict[str, Any]) -> Steps[dict[str, Any]]:
    order = OrderSagaInput.model_validate(payload)
    key = partial(idempotency_key, order.order_id)

    def undo(name: str) -> UndoInput:
        return UndoInput(order.order_id, key(name))

    def record(status: str) -> Steps[bool]:  # the order's row follows the wait on a person (bookkeeping)
        total = saga.summary_fields.get("total_cents")
        update = OrderStatusUpdate(order.order_id, status, None, total, saga.summary(), approved=status == RUNNING)
        return saga.bookkeeping(RECORD_ORDER_STATUS, update)

    lean = ctx.is_patched(CANCEL_POLLED_FINAL_BY_API)
    if lean:
        saga = Saga(ctx, retry_policy(order.retry), cancel_event=CANCEL_EVENT)
    else:
        saga = Saga(ctx, retry_policy(order.retry), cancel=ctx.wait_for_external_event(CANCEL_EVENT))
    if not lean and not ctx.is_patched(RUNNING_RECORDED_BY_API):
        # Sagas started before the order-api recorded RUNNING itself still do it here, as their history says.
        yield from saga.bookkeeping(RECORD_ORDER_STATUS, OrderStatusUpdate(order.order_id, RUNNING))
    abort = None
    try:
        # 1. Validate and price: a "no" here means nothing has happened yet.
        priced = yield from saga.step(
            VALIDATE_ORDER, INVENTORY, ValidateOrderInput(order.order_id, order.items), ValidateOrderResult
        )
        saga.summary_fields["total_cents"] = priced.total_cents
        # 2. Reserve. Each undo goes on the stack *before* its step: a step that timed out may still have happened.
        saga.push(RELEASE_INVENTORY, INVENTORY, undo(RELEASE_INVENTORY))
        yield from saga.step(
            RESERVE_INVENTORY,
            INVENTORY,
            ReserveInventoryInput(order.order_id, order.items, key(RESERVE_INVENTORY)),
            StepResult,
        )
        if ctx.is_patched(RISK_REVIEW_BEFORE_CHARGE):
            # 3. May it be charged? payment's risk review (a child workflow, handed this saga's history to check what
            # it is asked) approves, rejects, or leaves it to a person, who has until a deadline.
            review = RiskReviewInput(
                order.order_id, order.customer_id, priced.total_cents, key(RISK_REVIEW), order.retry
            )
            decided = yield from saga.child(RISK_REVIEW, PAYMENT, review, RiskDecision, instance_id=key(RISK_REVIEW))
            if decided.decision == REVIEW:  # no decision in time is a no
                wait = timedelta(seconds=order.approval_timeout_seconds)
                yield from saga.wait_for_decision(
                    APPROVAL, APPROVAL_EVENT, wait, reason=decided.reason, status=AWAITING_APPROVAL, on_change=record
                )
        # 4-5. Charge, then ship.
        saga.push(REFUND, PAYMENT, undo(REFUND))
        yield from saga.step(
            CHARGE,
            PAYMENT,
            ChargeInput(order.order_id, order.customer_id, priced.total_cents, order.payment_token, key(CHARGE)),
            StepResult,
        )
        saga.push(CANCEL_SHIPMENT, SHIPPING, undo(CANCEL_SHIPMENT))
        yield from saga.step(
            SHIP, SHIPPING, ShipInput(order.order_id, order.address, order.items, key(SHIP)), StepResult
        )
        saga.commit()  # the order is done: a cancel from here on is too late and changes nothing
    except SagaAborted as aborted:
        abort = aborted
        yield from saga.unwind()

    status, failure = conclusion(abort, saga.stack.failed)
    saga.conclude(status, failure)

    # 6. Tell the customer, in a sentence for customers. Best effort: a failure is recorded, never unwinds an order.
    kind = "order_confirmed" if status == COMPLETED else "order_failed"
    told = customer_message(status, abort)
    yield from saga.best_effort(
        NOTIFY, NOTIFICATION, NotifyInput(order.order_id, order.email, kind, told, key(NOTIFY)), NotifyResult
    )

    if not lean:
        yield from saga.bookkeeping(
            RECORD_ORDER_STATUS,
            OrderStatusUpdate(order.order_id, status, failure, saga.summary_fields.get("total_cents"), saga.summary()),
        )
    # Otherwise the order-api records the status from this output: after a wait, on every read, by its watcher of
    # sagas nobody waits for, and by the reconcile sweep (orchestrator.service).
    saga.flush()
    return saga.summary()
