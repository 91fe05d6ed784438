"""Inventory rules with no I/O: what makes an order's item list acceptable, and how it is priced."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from common.contracts import Item, PricedItem


class Rejected(Exception):
    """The order cannot be accepted as sent; ``str(exc)`` is the reason shown to the customer."""


def check_items(items: Sequence[Item], max_quantity: int) -> None:
    """At least one item, whole positive quantities up to ``max_quantity``, each SKU once.

    Duplicate SKUs are rejected rather than merged: a client that sends one twice has a bug worth seeing.
    """
    if not items:
        raise Rejected("an order needs at least one item")
    seen: set[str] = set()
    for item in items:
        if not isinstance(item.sku, str) or not item.sku:
            raise Rejected("every item needs a sku")
        if item.sku in seen:
            raise Rejected(f"duplicate sku: {item.sku}")
        seen.add(item.sku)
        if isinstance(item.quantity, bool) or not isinstance(item.quantity, int) or item.quantity < 1:
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
