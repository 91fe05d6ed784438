"""Inventory rules with no I/O: what makes an order's item list acceptable, how it is priced, and the state
machine of an order's reservation (reserve, release, and the tombstone a release leaves when it runs first)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from common.contracts import Item, PricedItem, StepResult, UndoResult

# Reservation states. RELEASED doubles as the tombstone: a release before any reservation leaves it, so a
# late reserve does nothing.
RESERVED, RELEASED = "RESERVED", "RELEASED"


class Rejected(Exception):
    """The order cannot be accepted as sent; ``str(exc)`` is the reason shown to the customer."""


def check_items(items: Sequence[Item], max_quantity: int) -> None:
    """At least one item, positive quantities up to ``max_quantity``, each SKU once (types are the contract's
    business: ``Item`` holds a str and an int).

    Duplicate SKUs are rejected rather than merged: a client that sends one twice has a bug worth seeing.
    """
    if not items:
        raise Rejected("an order needs at least one item")
    seen: set[str] = set()
    for item in items:
        if not item.sku:
            raise Rejected("every item needs a sku")
        if item.sku in seen:
            raise Rejected(f"duplicate sku: {item.sku}")
        seen.add(item.sku)
        if item.quantity < 1:
            raise Rejected(f"quantity must be a positive whole number: {item.sku}")
        if item.quantity > max_quantity:
            raise Rejected(f"quantity over the limit of {max_quantity}: {item.sku}")


def price(items: Sequence[Item], catalog_prices: Mapping[str, int]) -> list[PricedItem]:
    """Prices come from the catalog, never from the client."""
    unknown = [item.sku for item in items if item.sku not in catalog_prices]
    if unknown:
        raise Rejected(f"unknown sku: {', '.join(unknown)}")
    return [PricedItem(sku=i.sku, quantity=i.quantity, price_cents=catalog_prices[i.sku]) for i in items]


def total_cents(items: Sequence[PricedItem]) -> int:
    return sum(item.quantity * item.price_cents for item in items)


def reserve_outcome(order_id: str, status: str) -> StepResult:
    """What a reserve answers, given the order's reservation: the one it just made, or one that was there (an
    earlier reserve under another key answers the same; a release's tombstone refuses the reserve)."""
    if status == RELEASED:
        return StepResult.undone_first("release already ran for this order; not reserving")
    return StepResult.done(order_id)


@dataclass(frozen=True)
class Release:
    """What a release does: the reservation's next status (None: unchanged), whether its units go back to
    stock, and the answer."""

    status: str | None
    restock: bool
    result: UndoResult


def release(status: str | None, units: int = 0) -> Release:
    """Release an order's reservation (``status`` None: there is none yet) of ``units`` units in all.

    None: record the RELEASED tombstone. RESERVED: give the units back. RELEASED: nothing to undo.
    """
    if status is None:
        return Release(
            RELEASED,
            False,
            UndoResult(outcome="nothing_to_undo", detail="no reservation found; a late reserve will be refused"),
        )
    if status != RESERVED:
        return Release(None, False, UndoResult(outcome="nothing_to_undo", detail="already released"))
    return Release(RELEASED, True, UndoResult(outcome="undone", detail=f"released {units} units"))
