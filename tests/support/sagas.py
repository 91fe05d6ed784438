"""The order saga run on the fake workflow context: an order (``ORDER``), the happy path's scripted results
(``HAPPY``) and ``saga(**overrides)``, which runs it once with some results replaced."""

from __future__ import annotations

from common.contracts import (
    CustodyCheck,
    NotifyResult,
    PricedItem,
    RiskDecision,
    StepResult,
    UndoResult,
    ValidateOrderResult,
)
from orchestrator.domain import RECORD_ORDER_STATUS, OrderSagaInput
from orchestrator.saga import order_saga
from tests.support.fake_workflow import FakeWorkflowContext

ORDER = OrderSagaInput.model_validate(
    {
        "order_id": "order-1",
        "customer_id": "cust-7",
        "email": "ada@example.com",
        "items": [{"sku": "BOOK-1", "quantity": 2}, {"sku": "PEN-3", "quantity": 1}],
        "payment_token": "tok_visa",
        "address": {"name": "Ada", "line1": "1 Loop St", "city": "Lisbon", "postal_code": "1000", "country": "PT"},
        "retry": {"first_interval_ms": 100, "max_attempts": 3, "backoff": 2.0, "max_interval_ms": 1000},
    }
)

HAPPY = {
    "validate_order": ValidateOrderResult(
        ok=True, total_cents=4_250, items=[PricedItem("BOOK-1", 2, 1_900), PricedItem("PEN-3", 1, 450)]
    ),
    "reserve_inventory": StepResult(ok=True, reference="res-1"),
    "risk_review": RiskDecision(
        "approve", "total 42.50 is within the limits", {"first_order": False}, CustodyCheck(True)
    ),
    "charge": StepResult(ok=True, reference="pay-1"),
    "ship": StepResult(ok=True, reference="TRACK-1"),
    "release_inventory": UndoResult("undone"),
    "refund": UndoResult("undone"),
    "cancel_shipment": UndoResult("undone"),
    "notify": NotifyResult(sent=True),
    RECORD_ORDER_STATUS: None,
}

FORWARD = ["validate_order", "reserve_inventory", "risk_review", "charge", "ship"]


def saga(**overrides) -> tuple[FakeWorkflowContext, dict]:
    """Run the saga once; keyword overrides replace an activity's scripted outcome, the rest is the happy path."""
    options = {
        k: overrides.pop(k)
        for k in ("cancel_during", "cancel_at_start", "cancel_data", "is_replaying", "patched", "events")
        if k in overrides
    }
    ctx = FakeWorkflowContext(script={**HAPPY, **overrides}, **options)
    return ctx, ctx.run(order_saga, ORDER)
