"""Order rules of the order-api: statuses, a new order, the saga's input and conclusion, the status-update message,
a listing's cursor, and the errors of the use cases. What the workflow says about an order and the order's public
view are in ``orchestrator.views``.

Plain Python (no database, no HTTP, no Dapr): the saga, the API, the use cases and the repository build on it.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from common.contracts import (
    CHARGE,
    RESERVE_INVENTORY,
    RISK_REVIEW,
    SHIP,
    VALIDATE_ORDER,
    Address,
    Contract,
    Item,
    SagaRetry,
)
from common.outcomes import CANCELLED as CANCELLED_KIND
from common.outcomes import REFUSED, SagaAborted

PENDING = "PENDING"  # row stored, workflow scheduled (or about to be)
RUNNING = "RUNNING"
AWAITING_APPROVAL = "AWAITING_APPROVAL"  # the risk review asked a person to decide; the saga waits, until a deadline
COMPLETED = "COMPLETED"
COMPENSATED = "COMPENSATED"  # a step failed or said no; every undo ran
REJECTED = "REJECTED"  # validation, the risk review or a person said no (or no one decided in time); all undone
CANCELLED = "CANCELLED"  # cancelled on request; every undo ran
COMPENSATION_FAILED = "COMPENSATION_FAILED"  # an undo still failed after its retries: needs a person
# The saga's workflow itself failed or was terminated, outside the saga's own logic (a tampered history, a bug, an
# operator's terminate): nothing more will happen until an operator resolves the order (POST .../resolve), which
# runs every undo and ends it COMPENSATED or COMPENSATION_FAILED.
WORKFLOW_FAILED = "WORKFLOW_FAILED"

STATUSES = (
    PENDING,
    RUNNING,
    AWAITING_APPROVAL,
    COMPLETED,
    COMPENSATED,
    REJECTED,
    CANCELLED,
    COMPENSATION_FAILED,
    WORKFLOW_FAILED,
)
TERMINAL = frozenset({COMPLETED, COMPENSATED, REJECTED, CANCELLED, COMPENSATION_FAILED})
# Over, or stopped for an operator: nothing more happens to an order in one of these by itself.
SETTLED = TERMINAL | {WORKFLOW_FAILED}
# The runtime statuses of a saga workflow that stopped without concluding (the saga itself always returns).
STOPPED_OUTSIDE_THE_SAGA = frozenset({"FAILED", "TERMINATED"})

ORDER_ID = re.compile(r"^[A-Za-z0-9_-]{1,64}$")
CANCEL_EVENT = "cancel"
APPROVAL_EVENT = "approval"  # a person's decision: {"approved": bool, "reviewer"?: str, "note"?: str}
APPROVAL = "approval"  # the saga's wait for that decision, as a step
DEFAULT_APPROVAL_TIMEOUT_SECONDS = 24 * 3600.0
# A saga showing the same step in flight for this long has lost it (see orchestrator.sweep).
DEFAULT_STALL_AFTER = timedelta(minutes=15)

# The order-api's own activity (hosted by order-api itself, called without an app id).
RECORD_ORDER_STATUS = "record_order_status"
# The operator's workflow that unwinds an order whose saga workflow failed (orchestrator.resolution), and its
# instance ID: one per order, so a repeated resolve finds the one already running.
RESOLVE_ORDER = "resolve_order"


def resolution_id(order_id: str) -> str:
    return f"{order_id}:resolve"


# The order-api's workflow that asks the app of a saga's child workflow to wake it (orchestrator.wake).
WAKE_CHILD = "wake_child"


@dataclass(frozen=True)
class OrderSagaInput(Contract):
    """Everything the saga needs, fixed when the order is accepted (retry values and how long a person has to decide
    included: the saga reads no env)."""

    order_id: str
    customer_id: str
    email: str
    items: list[Item]
    payment_token: str
    address: Address
    retry: SagaRetry = SagaRetry()
    approval_timeout_seconds: float = DEFAULT_APPROVAL_TIMEOUT_SECONDS  # from the start of the wait to its deadline


@dataclass(frozen=True)
class OrderStatusUpdate(Contract):
    """Input of record_order_status: a status transition plus what the saga knows at that moment."""

    order_id: str
    status: str
    failure: dict[str, str] | None = None
    total_cents: int | None = None
    saga: dict[str, Any] | None = None  # steps and compensations, so the row outlives a purged workflow
    approved: bool = False  # RUNNING again: a person approved the order it was awaiting approval for


def stage(update: OrderStatusUpdate) -> int:
    """How far an order has got once ``update`` applies: PENDING 0, RUNNING 1, AWAITING_APPROVAL 2, RUNNING again
    once approved 3, WORKFLOW_FAILED 4 (from any of those), finished 5 (from any of those, a WORKFLOW_FAILED one
    included: an operator's resolution ends it). A record applies only to a row behind it, so one that arrives late
    or twice (the activity that writes it runs at least once) never moves an order back."""
    if update.status in TERMINAL:
        return 5
    if update.status == WORKFLOW_FAILED:
        return 4
    if update.status == AWAITING_APPROVAL:
        return 2
    if update.status == RUNNING:
        return 3 if update.approved else 1
    raise ValueError(f"not a status the saga records: {update.status!r}")


@dataclass(frozen=True)
class ResolveInput(Contract):
    """What the operator's resolution needs: the order, the saga's retry policy, and why its workflow failed."""

    order_id: str
    email: str
    cause: dict[str, str]  # {step, reason}: the failure the order shows
    saga: dict[str, Any] | None = None  # what the failed saga last said about itself (its steps), kept with the order
    retry: SagaRetry = SagaRetry()


@dataclass(frozen=True)
class WakeChildInput(Contract):
    """Which child workflow of an order's saga to wake (if the engine never ran it), and the app that hosts it."""

    order_id: str
    app_id: str
    instance_id: str


def conclusion(abort: SagaAborted | None, failed_undos: list[dict[str, Any]]) -> tuple[str, dict[str, str] | None]:
    """The terminal status and failure from how the forward path ended (None: it finished) and how the
    unwind went. A failed undo is what needs a person, so it is named as the failure; the original cause
    stays in the reason (and in the steps)."""
    if failed_undos:
        first = failed_undos[0]
        cause = f" (unwinding after {abort.step} {abort.kind}: {abort.reason})" if abort else ""
        return COMPENSATION_FAILED, {"step": first["name"], "reason": first.get("reason", "failed") + cause}
    if abort is None:
        return COMPLETED, None
    if abort.kind == CANCELLED_KIND:
        return CANCELLED, abort.failure()
    if abort.kind == REFUSED and abort.step in (VALIDATE_ORDER, RISK_REVIEW, APPROVAL):
        return REJECTED, abort.failure()
    return COMPENSATED, abort.failure()


def customer_message(status: str, abort: SagaAborted | None) -> str:
    """What the customer is told about how their order ended: one plain sentence per outcome, chosen from the
    status and the step that ended it (and whether that step said no or broke). Never the technical reason: that
    stays in the order's failure, for the people who run the shop."""
    if status == COMPLETED:
        return "Your order is confirmed and on its way."
    if status == CANCELLED:
        return "Your order has been cancelled as you asked; any payment has been refunded."
    if status == COMPENSATION_FAILED or abort is None:
        return "Something went wrong with your order and our team is looking into it; we will be in touch."
    refused = abort.kind == REFUSED
    if refused and abort.step == VALIDATE_ORDER:
        return "We could not accept your order: an item is unknown or ordered in a larger quantity than we allow."
    if refused and abort.step in (RISK_REVIEW, APPROVAL):
        return "We are sorry: after reviewing your order we cannot accept it. You have not been charged."
    if refused and abort.step == RESERVE_INVENTORY:
        return "Sorry, some items in your order are out of stock; you have not been charged."
    if refused and abort.step == CHARGE:
        return "Your payment was declined, so your order has not been placed."
    if refused and abort.step == SHIP:
        return "We cannot deliver to your address, so your order has been cancelled and your payment refunded."
    if abort.step == SHIP:
        return "We could not ship your order, so it has been cancelled and your payment refunded."
    return "We could not complete your order because of a problem on our side; any payment has been refunded."


# --- a new order ------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class NewOrder:
    """An order as the customer sent it, its shape already checked by the API. ``order_id`` None: make one."""

    customer_id: str
    email: str
    items: tuple[Item, ...]
    payment_method: str
    payment_token: str
    shipping_address: Address
    order_id: str | None = None

    def request(self) -> dict[str, Any]:
        """The order as stored with its row and fingerprinted for idempotency: the REST body without order_id."""
        return {
            "customer_id": self.customer_id,
            "email": self.email,
            "items": [{"sku": i.sku, "quantity": i.quantity} for i in self.items],
            "payment": {"method": self.payment_method, "token": self.payment_token},
            "shipping_address": self.shipping_address.model_dump(),
        }


def parse_cursor(cursor: str | None) -> int | None:
    """A listing cursor back to the ``seq`` it stands for; InvalidListing when it is not one we handed out."""
    if cursor is None:
        return None
    # ASCII digits only (str.isdigit also takes "²"), at most 18 of them: every such number fits the BIGINT the seq
    # column is (19 digits may not), and no seq will reach 10**18.
    if not (cursor.isascii() and cursor.isdigit()) or len(cursor) > 18 or int(cursor) < 1:
        raise InvalidListing(f"invalid cursor {cursor!r}: use the next_cursor of the previous page")
    return int(cursor)


# --- what the use cases refuse ------------------------------------------------------------------------------


class OrderError(Exception):
    """A use case refused: ``detail`` says why; ``extra`` are facts the client gets with it."""

    def __init__(self, detail: str, **extra: Any) -> None:
        super().__init__(detail)
        self.detail, self.extra = detail, extra


class OrderNotFound(OrderError):
    """No order has this ID."""


class OrderConflict(OrderError):
    """The order exists with another body, or has already finished."""


class InvalidListing(OrderError):
    """A listing query that cannot be answered: an unknown status, a cursor we never handed out."""


class WorkflowUnavailable(OrderError):
    """The workflow engine could not be reached or failed; what was stored stays stored."""
