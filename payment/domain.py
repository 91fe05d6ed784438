"""Payment rules with no I/O: which test tokens approve, and the identifiers people see."""

from __future__ import annotations

import hashlib

APPROVING_TOKENS = frozenset({"tok_visa"})
DECLINING_TOKENS = {"tok_declined": "card declined"}


class InvalidCharge(ValueError):
    """The charge request itself is malformed (a caller bug, not a decline)."""


def check_amount(amount_cents: int) -> None:
    if isinstance(amount_cents, bool) or not isinstance(amount_cents, int) or amount_cents <= 0:
        raise InvalidCharge(f"amount_cents must be a positive integer, got {amount_cents!r}")


def decline_reason(token: str) -> str | None:
    """None when the card approves; otherwise why it declines."""
    if token in APPROVING_TOKENS:
        return None
    return DECLINING_TOKENS.get(token, "unknown test token")


def payment_id(order_id: str) -> str:
    """Deterministic, so a repeated charge reports the same reference."""
    return "pay_" + hashlib.sha256(order_id.encode()).hexdigest()[:16]
