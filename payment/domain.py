"""Payment rules with no I/O: which test tokens approve, the identifiers people see, the state machine of an
order's payment (charge, refund, and the tombstone a refund leaves when it runs before any charge), and the risk
review: the chain-of-custody check of what it is asked, and the rule that approves, rejects or asks a person."""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from common.contracts import (
    APPROVE,
    INVENTORY,
    ORDER_API,
    ORDER_SAGA,
    REJECT,
    RESERVE_INVENTORY,
    REVIEW,
    VALIDATE_ORDER,
    CustodyCheck,
    RiskAssessment,
    StepResult,
    UndoResult,
)

# Payment states. VOIDED is the tombstone: refunded before any charge, so a late charge does nothing.
CHARGED, DECLINED, REFUNDED, VOIDED = "CHARGED", "DECLINED", "REFUNDED", "VOIDED"

APPROVING_TOKENS = frozenset({"tok_visa"})
DECLINING_TOKENS = {"tok_declined": "card declined"}


class InvalidCharge(ValueError):
    """The charge request itself is malformed (a caller bug, not a decline)."""


def check_amount(amount_cents: int) -> None:
    """A charge moves money one way: its amount is positive (its type is the contract's business)."""
    if amount_cents <= 0:
        raise InvalidCharge(f"amount_cents must be a positive integer, got {amount_cents!r}")


def decline_reason(token: str) -> str | None:
    """None when the card approves; otherwise why it declines."""
    if token in APPROVING_TOKENS:
        return None
    return DECLINING_TOKENS.get(token, "unknown test token")


def payment_id(order_id: str) -> str:
    """Deterministic, so a repeated charge reports the same reference."""
    return "pay_" + hashlib.sha256(order_id.encode()).hexdigest()[:16]


@dataclass(frozen=True)
class Payment:
    """An order's payment as the rules see it: one per order, whoever wrote it first."""

    status: str
    payment_id: str | None = None
    decline_reason: str | None = None


def first_charge(order_id: str, token: str) -> Payment:
    """The payment a charge records for an order that has none yet: CHARGED, or DECLINED with the reason."""
    reason = decline_reason(token)
    return Payment(CHARGED if reason is None else DECLINED, payment_id(order_id), reason)


def charge_outcome(payment: Payment) -> StepResult:
    """What a charge answers, given the order's payment: the one it just recorded, or one that was there
    (an earlier charge under another key answers the same; a refund's tombstone refuses the charge)."""
    if payment.status == CHARGED:
        return StepResult.done(payment.payment_id)
    if payment.status == DECLINED:
        return StepResult.refused(payment.decline_reason)
    if payment.status == VOIDED:
        return StepResult.undone_first("refund already ran for this order; not charging")
    return StepResult.undone_first("payment already refunded; not charging again")


@dataclass(frozen=True)
class Refund:
    """What a refund does: the payment's next status (None: unchanged), the cents to pay back, the answer."""

    status: str | None
    refund_cents: int
    result: UndoResult


def refund(payment: Payment | None, net_cents: int = 0) -> Refund:
    """Refund an order's payment (None: there is none yet), ``net_cents`` being what it has charged net.

    No payment: record the VOIDED tombstone. A charged one: pay back exactly the net charge. Anything else
    (declined, refunded, voided): nothing to undo.
    """
    if payment is None:
        return Refund(
            VOIDED, 0, UndoResult(outcome="nothing_to_undo", detail="no charge found; a late charge will be refused")
        )
    if payment.status != CHARGED:
        return Refund(None, 0, UndoResult(outcome="nothing_to_undo", detail=f"payment is {payment.status}"))
    return Refund(REFUNDED, net_cents, UndoResult(outcome="undone", detail=f"refunded {net_cents} cents"))


# --- the risk review: may this order be charged? ---------------------------------------------------------------


@dataclass(frozen=True)
class RiskLimits:
    """The risk rule's thresholds (payment's settings, ``RISK_*``), in cents."""

    review_above_cents: int = 50_000  # any order above this waits for a person
    first_order_review_above_cents: int = 30_000  # a customer's first order above this waits for a person
    reject_above_cents: int = 100_000  # no card order above this is taken


@dataclass(frozen=True)
class PaymentHistory:
    """What payment's own records say about a customer: orders charged (and not refunded), payments declined."""

    charged_orders: int = 0
    declined_payments: int = 0

    def facts(self) -> dict[str, Any]:
        return {
            "first_order": self.charged_orders == 0,
            "charged_orders": self.charged_orders,
            "declined_payments": self.declined_payments,
        }


def assess(amount_cents: int, history: PaymentHistory, custody: CustodyCheck, limits: RiskLimits) -> RiskAssessment:
    """Approve, reject or ask a person: a broken chain of custody or a total above the card limit rejects; a total
    above the review threshold, or a first order above the first-order threshold, waits for a person."""
    facts = history.facts()
    total = money(amount_cents)
    if not custody.ok:
        return RiskAssessment(REJECT, f"chain of custody broken: {custody.reason}", facts)
    if amount_cents > limits.reject_above_cents:
        limit = money(limits.reject_above_cents)
        return RiskAssessment(REJECT, f"total {total} is above the card limit, {limit}", facts)
    if amount_cents > limits.review_above_cents:
        return RiskAssessment(REVIEW, f"total {total} is above {money(limits.review_above_cents)}", facts)
    if facts["first_order"] and amount_cents > limits.first_order_review_above_cents:
        limit = money(limits.first_order_review_above_cents)
        return RiskAssessment(REVIEW, f"first order of this customer, and its total {total} is above {limit}", facts)
    return RiskAssessment(APPROVE, f"total {total} is within the limits", facts)


def money(cents: int) -> str:
    return f"{cents // 100}.{cents % 100:02d}"


@dataclass(frozen=True)
class Call:
    """One activity a workflow of the chain called, as its propagated history shows it: where it ran, and how it
    ended (``completed``, ``failed``, or still ``scheduled``) with its decoded result."""

    name: str
    app: str
    outcome: str
    result: Any = None


@dataclass(frozen=True)
class Caller:
    """One workflow of the propagated chain (the oldest ancestor first, the immediate caller last)."""

    app: str
    instance_id: str
    workflow: str
    calls: tuple[Call, ...] = ()

    def last(self, name: str) -> Call | None:
        """The last call of activity ``name`` (a retry calls it again)."""
        return next((c for c in reversed(self.calls) if c.name == name), None)


def check_custody(chain: Sequence[Caller] | None, order_id: str, amount_cents: int) -> CustodyCheck:
    """Check what a risk review is asked against the history of the saga that asks it: the review was started by
    the order saga of this very order, on the order-api; the total it is asked to approve is the one inventory
    priced in that saga's validate_order; and that saga's reservation succeeded on inventory."""
    if not chain:
        return CustodyCheck(False, [], "no propagated history: the caller did not hand over its lineage")
    caller = chain[-1]
    if (caller.app, caller.workflow, caller.instance_id) != (ORDER_API, ORDER_SAGA, order_id):
        return CustodyCheck(
            False,
            [],
            f"started by {caller.workflow!r} ({caller.instance_id}) on {caller.app}, "
            f"not by the {ORDER_SAGA} of order {order_id} on {ORDER_API}",
        )
    checks = [f"started by {ORDER_SAGA} {order_id} on {ORDER_API}"]
    priced = caller.last(VALIDATE_ORDER)
    result = priced.result if priced is not None and priced.outcome == "completed" else None
    if priced is None or priced.app != INVENTORY or not isinstance(result, dict) or result.get("ok") is not True:
        return CustodyCheck(False, checks, f"no {VALIDATE_ORDER} on {INVENTORY} priced this order")
    if result.get("total_cents") != amount_cents:
        return CustodyCheck(
            False,
            checks,
            f"asked to approve {money(amount_cents)}, but {VALIDATE_ORDER} priced the order at "
            f"{money(result.get('total_cents') or 0)}",
        )
    checks.append(f"total {money(amount_cents)} as {VALIDATE_ORDER} priced it on {INVENTORY}")
    reserved = caller.last(RESERVE_INVENTORY)
    answer = reserved.result if reserved is not None and reserved.outcome == "completed" else None
    if reserved is None or reserved.app != INVENTORY or not isinstance(answer, dict) or answer.get("ok") is not True:
        return CustodyCheck(False, checks, f"the {RESERVE_INVENTORY} on {INVENTORY} did not succeed")
    checks.append(f"{RESERVE_INVENTORY} succeeded on {INVENTORY}")
    return CustodyCheck(True, checks)
