"""Shipping rules with no I/O: where we deliver, how tracking numbers are made, and the state machine of an
order's shipment (ship, cancel, and the tombstone a cancel leaves when it runs before any shipment)."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

from common.contracts import StepResult, UndoResult

# Shipment states. CANCELLED with no tracking number is the tombstone: cancelled before shipping, so a late
# ship does nothing.
SCHEDULED, CANCELLED = "SCHEDULED", "CANCELLED"

# ISO 3166-1 alpha-2 codes of the countries we ship to. Antarctica (AQ) is the demo's undeliverable address.
SERVED_COUNTRIES = frozenset({"US", "CA", "GB", "DE", "FR", "NL", "SE", "JP", "AU"})


def undeliverable_reason(country: str) -> str | None:
    """None when we deliver to ``country``; otherwise why not."""
    if country.strip().upper() in SERVED_COUNTRIES:
        return None
    return f"undeliverable: we do not ship to {country!r} (served: {', '.join(sorted(SERVED_COUNTRIES))})"


def tracking_number(order_id: str) -> str:
    """Derived from the order, so every retry and every reader sees the same number."""
    return "TRK-" + hashlib.sha256(order_id.encode()).hexdigest()[:12].upper()


def ship_outcome(status: str, tracking: str) -> StepResult:
    """What a ship answers, given the order's shipment: the one it just scheduled, or one that was there (an
    earlier ship under another key answers the same; a cancel's tombstone refuses the ship)."""
    if status == CANCELLED:
        return StepResult.undone_first("shipment already cancelled for this order; not shipping")
    return StepResult.done(tracking)


@dataclass(frozen=True)
class Cancel:
    """What a cancel does: the shipment's next status (None: unchanged) and the answer."""

    status: str | None
    result: UndoResult


def cancel(status: str | None, tracking: str | None = None) -> Cancel:
    """Cancel an order's shipment (``status`` None: there is none yet; ``tracking``: its tracking number).

    None: record the CANCELLED tombstone. SCHEDULED: cancel it. CANCELLED: nothing to undo.
    """
    if status is None:
        return Cancel(
            CANCELLED, UndoResult(outcome="nothing_to_undo", detail="no shipment found; a late ship will be refused")
        )
    if status != SCHEDULED:
        return Cancel(None, UndoResult(outcome="nothing_to_undo", detail="already cancelled"))
    return Cancel(CANCELLED, UndoResult(outcome="undone", detail=f"cancelled shipment {tracking}"))
