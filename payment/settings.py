"""Settings only payment has: the thresholds of its risk rule, read from the environment once at start-up (never at
import). ``RISK_REVIEW_ABOVE_CENTS``, ``RISK_FIRST_ORDER_REVIEW_ABOVE_CENTS``, ``RISK_REJECT_ABOVE_CENTS``."""

from __future__ import annotations

import os
from collections.abc import Mapping

from common.settings import SettingsError
from payment.domain import RiskLimits

VARIABLES = {
    "RISK_REVIEW_ABOVE_CENTS": "review_above_cents",
    "RISK_FIRST_ORDER_REVIEW_ABOVE_CENTS": "first_order_review_above_cents",
    "RISK_REJECT_ABOVE_CENTS": "reject_above_cents",
}


def load_risk_limits(env: Mapping[str, str] | None = None) -> RiskLimits:
    env = os.environ if env is None else env
    values: dict[str, int] = {}
    for name, field in VARIABLES.items():
        raw = (env.get(name) or "").strip()
        if not raw:
            continue
        if not raw.isascii() or not raw.isdigit():
            raise SettingsError(f"{name}={raw!r}: expected a whole number of cents, 0 or more")
        values[field] = int(raw)
    return RiskLimits(**values)
