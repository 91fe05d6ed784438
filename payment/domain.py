"""Payment rules with no I/O: which test tokens approve, the identifiers people see, and the state machine of
an order's payment (charge, refund, and the tombstone a refund leaves when it runs before any charge)."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

from common.contracts import StepResult, UndoResult

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
