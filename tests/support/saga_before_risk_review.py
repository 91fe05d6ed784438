"""FROZEN, for tests only: ``orchestrator/saga.py`` as it was before the risk review (commit 54c36a3), when the saga
went from the reservation straight to the charge. ``tests/e2e/test_versions.py`` runs an order-api with it, starts
an order, and finishes that order on the current code, which must keep it on this path (the patch
``risk-review-before-charge``). Do not edit: it stands for code already deployed. Its docstring follows.

The order saga (`order_saga`, instance ID = order ID): the whole business process of one order.

Deterministic orchestration only: every effect is an activity on the app that owns it. Cancel is checked
before and after each forward step, never raced against it, so an undo never runs while its step is in flight.
Cancel interleavings: before the workflow starts (the sidecar keeps the event) or before step k → steps < k
are undone; while step k is in flight → k finishes (or runs out of retries), then k's undo runs with the rest;
after ship finished, during the unwind or the notification → too late, changes nothing; a second cancel → no-op.
"""

from __future__ import annotations

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
    SHIP,
    SHIPPING,
    VALIDATE_ORDER,
    ChargeInput,
    NotifyInput,
    NotifyResult,
    ReserveInventoryInput,
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
    CANCEL_EVENT,
    COMPLETED,
    RECORD_ORDER_STATUS,
    RUNNING,
    OrderSagaInput,
    OrderStatusUpdate,
    conclusion,
)

# A patch (workflow versioning): sagas started since the order-api records RUNNING itself, once it has started
# the saga, skip that activity; older ones, replayed, take the old path. Remove once no such saga is running.
RUNNING_RECORDED_BY_API = "running-recorded-by-order-api"


def order_saga(ctx: wf.DaprWorkflowContext, payload: dict[str, Any]) -> Steps[dict[str, Any]]:
    order = OrderSagaInput.model_validate(payload)
    key = partial(idempotency_key, order.order_id)

    def undo(name: str) -> UndoInput:
        return UndoInput(order.order_id, key(name))

    saga = Saga(ctx, retry_policy(order.retry), cancel=ctx.wait_for_external_event(CANCEL_EVENT))
    if not ctx.is_patched(RUNNING_RECORDED_BY_API):
        # Sagas started before the order-api recorded RUNNING itself still do it here, as their history says.
        yield from saga.bookkeeping(RECORD_ORDER_STATUS, OrderStatusUpdate(order.order_id, RUNNING))
    abort = None
    try:
        # 1. Validate and price: a "no" here means nothing has happened yet.
        priced = yield from saga.step(
            VALIDATE_ORDER, INVENTORY, ValidateOrderInput(order.order_id, order.items), ValidateOrderResult
        )
        saga.summary_fields["total_cents"] = priced.total_cents
        # 2-4. Each undo goes on the stack *before* its step: a step that timed out may still have happened.
        saga.push(RELEASE_INVENTORY, INVENTORY, undo(RELEASE_INVENTORY))
        yield from saga.step(
            RESERVE_INVENTORY,
            INVENTORY,
            ReserveInventoryInput(order.order_id, order.items, key(RESERVE_INVENTORY)),
            StepResult,
        )
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

    # 5. Tell the customer. Best effort: a failed notification is recorded, never unwinds an order.
    kind = "order_confirmed" if status == COMPLETED else "order_failed"
    detail = failure["reason"] if failure else None
    yield from saga.best_effort(
        NOTIFY, NOTIFICATION, NotifyInput(order.order_id, order.email, kind, detail, key(NOTIFY)), NotifyResult
    )

    yield from saga.bookkeeping(
        RECORD_ORDER_STATUS,
        OrderStatusUpdate(order.order_id, status, failure, saga.summary_fields.get("total_cents"), saga.summary()),
    )
    return saga.summary()
