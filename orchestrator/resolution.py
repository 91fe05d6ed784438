"""The operator's way out for an order whose saga workflow failed outside the saga's own logic (a tampered history,
a non-determinism error, a terminate): ``resolve_order`` runs every undo the saga can push, newest first, records
the outcome on the order and tells the customer.

The failed saga's history is not trusted (it may be the thing that was tampered with), so nothing is read from
it: every undo runs. Each is idempotent under the saga's own key and a no-op when its step never happened, and it
leaves a tombstone, so a forward step still in flight somewhere does nothing when it lands. Deterministic, like
the saga: it only calls the workflow context.
"""

from __future__ import annotations

from typing import Any

from dapr.ext import workflow as wf

from common.contracts import (
    ACTIVITY_APP,
    NOTIFICATION,
    NOTIFY,
    UNDO_OF,
    NotifyInput,
    NotifyResult,
    UndoInput,
    idempotency_key,
)
from common.saga import Saga, Steps, retry_policy
from orchestrator.domain import (
    COMPENSATED,
    COMPENSATION_FAILED,
    RECORD_ORDER_STATUS,
    OrderStatusUpdate,
    ResolveInput,
)

# Every undo the saga can push, with the app that hosts it, in the order it pushes them (a unit test holds the saga
# to it).
EVERY_UNDO = tuple((undo, ACTIVITY_APP[undo]) for undo in UNDO_OF.values())
# What the customer is told: a sentence for people, never the engine's reason.
CUSTOMER_NOTICE = "We could not complete your order. Anything we charged has been refunded."


def resolve_order(ctx: wf.DaprWorkflowContext, payload: dict[str, Any]) -> Steps[dict[str, Any]]:
    request = ResolveInput.model_validate(payload)
    order_id = request.order_id
    saga = Saga(ctx, retry_policy(request.retry))
    for name, app_id in EVERY_UNDO:
        saga.stack.push(name, app_id, UndoInput(order_id, idempotency_key(order_id, name)))
    yield from saga.unwind()
    status = COMPENSATION_FAILED if saga.stack.failed else COMPENSATED
    saga.summary_fields["resolved_at"] = saga.now()
    saga.conclude(status, request.cause)

    # The failed saga's own notification key may be spent (a confirmation sent before it failed): this one has its own.
    # A customer the saga already told of a failure is not told twice (notification sends one message of a kind).
    notice = NotifyInput(order_id, request.email, "order_failed", CUSTOMER_NOTICE, f"{order_id}:notify-resolution")
    yield from saga.best_effort(NOTIFY, NOTIFICATION, notice, NotifyResult)

    resolution = saga.summary()
    final = {**(request.saga or {}), "compensations": resolution["compensations"], "resolution": resolution}
    yield from saga.bookkeeping(RECORD_ORDER_STATUS, OrderStatusUpdate(order_id, status, request.cause, None, final))
    saga.flush()
    return resolution
