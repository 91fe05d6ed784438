"""Settings every app reads from its environment, once, at start-up (never at import).

``load_settings(app_id)`` returns a frozen ``Settings``; a bad value raises ``SettingsError`` naming the variable.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar

from common.contracts import INVENTORY, NOTIFICATION, ORDER_API, PAYMENT, SHIPPING, SagaRetry

T = TypeVar("T")

# The ports of dapr.yaml: used only when APP_PORT is not set (e.g. `python -m payment` by hand).
DEFAULT_PORTS = {ORDER_API: 8000, PAYMENT: 8001, INVENTORY: 8002, SHIPPING: 8003, NOTIFICATION: 8004}


class SettingsError(ValueError):
    """A configuration value is missing or malformed; the message names the variable."""


@dataclass(frozen=True)
class Settings:
    """Everything an app needs from its environment.

    ``database_url`` is ``DATABASE_URL`` as given; ``run_service`` replaces it with the resolved, migrated
    URL (``dataclasses.replace``) before ``create_app(settings)`` is called, so apps can rely on it.
    """

    app_id: str
    host: str = "127.0.0.1"
    port: int = 8000
    faults_enabled: bool = False
    faults_allow_remote: bool = False  # fault endpoints answer loopback clients only unless this is true
    database_url: str | None = None
    postgres_url: str | None = None
    data_dir: Path = Path(".data")
    log_level: str = "INFO"
    retry: SagaRetry = SagaRetry()
    max_quantity_per_item: int = 10


def load_settings(app_id: str, env: Mapping[str, str] | None = None) -> Settings:
    """Build the settings of ``app_id`` from ``env`` (default: ``os.environ``)."""
    env = os.environ if env is None else env
    return Settings(
        app_id=app_id,
        host=env.get("APP_HOST") or "127.0.0.1",
        port=read_setting(env, "APP_PORT", DEFAULT_PORTS.get(app_id, 8000), _port),
        faults_enabled=read_setting(env, "FAULTS_ENABLED", False, parse_bool),
        faults_allow_remote=read_setting(env, "FAULTS_ALLOW_REMOTE", False, parse_bool),
        database_url=env.get("DATABASE_URL") or None,
        postgres_url=env.get("POSTGRES_URL") or None,
        data_dir=Path(env.get("DATA_DIR") or ".data"),
        log_level=read_setting(env, "LOG_LEVEL", "INFO", _log_level),
        retry=SagaRetry(
            first_interval_ms=read_setting(env, "SAGA_RETRY_FIRST_INTERVAL_MS", 500, _int_at_least(0)),
            max_attempts=read_setting(env, "SAGA_RETRY_MAX_ATTEMPTS", 5, _int_at_least(1)),
            backoff=read_setting(env, "SAGA_RETRY_BACKOFF", 2.0, _float_at_least(1.0)),
            max_interval_ms=read_setting(env, "SAGA_RETRY_MAX_INTERVAL_MS", 10_000, _int_at_least(0)),
        ),
        max_quantity_per_item=read_setting(env, "MAX_QUANTITY_PER_ITEM", 10, _int_at_least(1)),
    )


def read_setting(env: Mapping[str, str], name: str, default: T, parse: Callable[[str], T]) -> T:
    raw = env.get(name)
    if raw is None or raw.strip() == "":
        return default
    try:
        return parse(raw.strip())
    except ValueError as exc:
        raise SettingsError(f"{name}={raw!r}: {exc}") from None


def parse_bool(raw: str) -> bool:
    lowered = raw.lower()
    if lowered in ("true", "1", "yes", "on"):
        return True
    if lowered in ("false", "0", "no", "off"):
        return False
    raise ValueError("expected true or false")


def _port(raw: str) -> int:
    port = int(raw)
    if not 1 <= port <= 65535:
        raise ValueError("expected a TCP port between 1 and 65535")
    return port


def _int_at_least(minimum: int) -> Callable[[str], int]:
    def parse(raw: str) -> int:
        value = int(raw)
        if value < minimum:
            raise ValueError(f"expected an integer >= {minimum}")
        return value

    return parse


def _float_at_least(minimum: float) -> Callable[[str], float]:
    def parse(raw: str) -> float:
        value = float(raw)
        if not value >= minimum:  # also rejects NaN
            raise ValueError(f"expected a number >= {minimum}")
        return value

    return parse


def _log_level(raw: str) -> str:
    level = raw.upper()
    if level not in ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"):
        raise ValueError("expected DEBUG, INFO, WARNING, ERROR or CRITICAL")
    return level
