"""Shipping rules with no I/O: where we deliver, and how tracking numbers are made."""

from __future__ import annotations

import hashlib

# ISO 3166-1 alpha-2 codes of the countries we ship to. Antarctica (AQ) is the demo's undeliverable address.
SERVED_COUNTRIES = frozenset({"US", "CA", "GB", "DE", "FR", "NL", "SE", "JP", "AU"})


def undeliverable_reason(country: str) -> str | None:
    """None when we deliver to ``country``; otherwise why not."""
    if isinstance(country, str) and country.strip().upper() in SERVED_COUNTRIES:
        return None
    return f"undeliverable: we do not ship to {country!r} (served: {', '.join(sorted(SERVED_COUNTRIES))})"


def tracking_number(order_id: str) -> str:
    """Derived from the order, so every retry and every reader sees the same number."""
    return "TRK-" + hashlib.sha256(order_id.encode()).hexdigest()[:12].upper()
