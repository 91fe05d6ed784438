"""Order rules of the order-api: statuses, the saga's input and conclusion, the status-update message.

Plain Python (no database, no HTTP, no Dapr): the saga, the API and the repository all build on it.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any, ClassVar

from common.contracts import VALIDATE_ORDER, Address, Contract, Item, SagaRetry
from common.outcomes import CANCELLED as CANCELLED_KIND
from common.outcomes import REFUSED, SagaAborted

PENDING = "PENDING"  # row stored, workflow scheduled (or about to be)
RUNNING = "RUNNING"
COMPLETED = "COMPLETED"
COMPENSATED = "COMPENSATED"  # a step failed or said no; every undo ran
REJECTED = "REJECTED"  # validation said no; nothing had happened
CANCELLED = "CANCELLED"  # cancelled on request; every undo ran
COMPENSATION_FAILED = "COMPENSATION_FAILED"  # an undo still failed after its retries: needs a person

STATUSES = (PENDING, RUNNING, COMPLETED, COMPENSATED, REJECTED, CANCELLED, COMPENSATION_FAILED)
TERMINAL = frozenset({COMPLETED, COMPENSATED, REJECTED, CANCELLED, COMPENSATION_FAILED})

ORDER_ID = re.compile(r"^[A-Za-z0-9_-]{1,64}$")
CANCEL_EVENT = "cancel"

# The order-api's own activity (hosted by order-api itself, called without an app id).
RECORD_ORDER_STATUS = "record_order_status"


@dataclass(frozen=True)
class OrderSagaInput(Contract):
    """Everything the saga needs, fixed when the order is accepted (retry values included: the saga reads no env)."""

    order_id: str
    customer_id: str
    email: str
    items: list[Item]
    payment_token: str
    address: Address
    retry: SagaRetry = SagaRetry()
    _nested: ClassVar[dict[str, type]] = {"items": Item, "address": Address, "retry": SagaRetry}


@dataclass(frozen=True)
class OrderStatusUpdate(Contract):
    """Input of record_order_status: a status transition plus what the saga knows at that moment."""

    order_id: str
    status: str
    failure: dict[str, str] | None = None
    total_cents: int | None = None
    saga: dict[str, Any] | None = None  # steps and compensations, so the row outlives a purged workflow


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
    if abort.kind == REFUSED and abort.step == VALIDATE_ORDER:
        return REJECTED, abort.failure()
    return COMPENSATED, abort.failure()

