"""Settings only the order-api has, read from the environment once at start-up (never at import)."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass

from common.settings import SettingsError


@dataclass(frozen=True)
class ApiSettings:
    wait_timeout_seconds: float = 30.0  # upper bound of POST /orders?wait=true


def load_api_settings(env: Mapping[str, str] | None = None) -> ApiSettings:
    env = os.environ if env is None else env
    raw = (env.get("ORDER_WAIT_TIMEOUT_SECONDS") or "").strip()
    if not raw:
        return ApiSettings()
    try:
        value = float(raw)
    except ValueError:
        value = -1.0
    if not 0 < value <= 600:
        raise SettingsError(f"ORDER_WAIT_TIMEOUT_SECONDS={raw!r}: expected a number of seconds in (0, 600]")
    return ApiSettings(wait_timeout_seconds=value)
