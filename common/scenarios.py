"""The demo scenarios: what each sends and which faults it needs. Plain data, shared by the command line (``shop``)
and the order-api's console (``orchestrator/console``). Faults are armed for the scenario's own order only."""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class Fault:
    app: str
    activity: str
    mode: str
    count: int | None = None
    delay_ms: int | None = None


@dataclass(frozen=True)
class Scenario:
    name: str
    summary: str
    expect: str  # the status the order should end in (AWAITING_APPROVAL: wait there, for a person to decide)
    token: str = "tok_visa"
    country: str = "GB"
    quantity: int = 1
    sku: str = "SKU-MUG"
    faults: tuple[Fault, ...] = ()
    cancel_during: str | None = None  # cancel once this step is running
    extra: dict[str, Any] = field(default_factory=dict)
    items: tuple[tuple[str, int], ...] = ()  # (sku, quantity) of each item, instead of one sku and quantity


# With payment's default risk thresholds (RISK_*): 550.00 is above the review threshold (500.00), so a person
# decides; 1,100.00 is above the card limit (1,000.00), so the review rejects it.
LARGE = (("SKU-MUG", 10), ("SKU-TEE", 10), ("SKU-CAP", 10))
OVER_THE_LIMIT = (*LARGE, ("SKU-HOODIE", 10))


SCENARIOS = {
    s.name: s
    for s in (
        Scenario("happy", "reserved, charged, shipped and notified", "COMPLETED"),
        Scenario("declined", "the card is declined: the reservation is released", "COMPENSATED", token="tok_declined"),
        Scenario(
            "out-of-stock",
            "more desk lamps than there are: nothing to undo",
            "COMPENSATED",
            sku="SKU-LAMP",
            quantity=10,
        ),
        Scenario("undeliverable", "nobody ships to Antarctica: refund and release", "COMPENSATED", country="AQ"),
        Scenario(
            "transient",
            "the charge fails twice, then succeeds on a retry",
            "COMPLETED",
            faults=(Fault("payment", "charge", "transient", count=2),),
        ),
        Scenario(
            "crash",
            "payment dies right after charging; it restarts and the order completes, charged once",
            "COMPLETED",
            faults=(Fault("payment", "charge", "crash_after", count=1),),
        ),
        Scenario(
            "ship-fails",
            "shipping fails for good: cancel the shipment, refund, release",
            "COMPENSATED",
            faults=(Fault("shipping", "ship", "error"),),
        ),
        Scenario(
            "cancel",
            "cancelled while the charge is running: refund and release",
            "CANCELLED",
            faults=(Fault("payment", "charge", "delay", delay_ms=3000),),
            cancel_during="charge",
        ),
        Scenario(
            "review",
            "a large order: the risk review leaves it to a person; approve or reject it before its deadline",
            "AWAITING_APPROVAL",
            items=LARGE,
        ),
        Scenario(
            "approval-timeout",
            "a large order nobody decides on: at its deadline it is rejected and its reservation released",
            "REJECTED",
            items=LARGE,
        ),
        Scenario(
            "risk-reject",
            "an order above the card limit: the risk review rejects it and its reservation is released",
            "REJECTED",
            items=OVER_THE_LIMIT,
        ),
    )
}


def order_body(scenario: Scenario, order_id: str | None) -> dict[str, Any]:
    body: dict[str, Any] = {
        "customer_id": "shop-cli",
        "email": "ada@example.com",
        "items": [{"sku": sku, "quantity": quantity} for sku, quantity in scenario.items]
        or [{"sku": scenario.sku, "quantity": scenario.quantity}],
        "payment": {"method": "card", "token": scenario.token},
        "shipping_address": {
            "name": "Ada Lovelace",
            "line1": "12 St James Sq",
            "city": "London",
            "postal_code": "SW1Y 4JH",
            "country": scenario.country,
        },
    }
    if order_id:
        body["order_id"] = order_id
    return body


def new_order_id(scenario: Scenario) -> str:
    return f"{scenario.name}-{uuid.uuid4().hex[:8]}"


def fault_body(fault: Fault, order_id: str) -> dict[str, Any]:
    """The ``PUT /faults/{activity}`` body that arms ``fault`` for ``order_id`` only."""
    body: dict[str, Any] = {"mode": fault.mode, "order_id": order_id}
    if fault.count is not None:
        body["count"] = fault.count
    if fault.delay_ms is not None:
        body["delay_ms"] = fault.delay_ms
    return body
