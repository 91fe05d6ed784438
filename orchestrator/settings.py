"""Settings only the order-api has, read from the environment once at start-up (never at import)."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from urllib.parse import urlsplit

from common.contracts import INVENTORY, NOTIFICATION, PAYMENT, SHIPPING
from common.settings import DEFAULT_PORTS, SettingsError, parse_bool, read_setting
from orchestrator.domain import DEFAULT_APPROVAL_TIMEOUT_SECONDS, DEFAULT_STALL_AFTER

# The apps whose REST APIs the console reads and drives (their faults, what the customer was told), each
# from ``<APP>_URL``, by default where dapr.yaml puts them.
CONSOLE_APPS = (PAYMENT, INVENTORY, SHIPPING, NOTIFICATION)


def _default_urls() -> dict[str, str]:
    return {app: f"http://127.0.0.1:{DEFAULT_PORTS[app]}" for app in CONSOLE_APPS}


@dataclass(frozen=True)
class ApiSettings:
    wait_timeout_seconds: float = 30.0  # upper bound of POST /orders?wait=true
    app_urls: dict[str, str] = field(default_factory=_default_urls)  # PAYMENT_URL, INVENTORY_URL, ...
    # How often orders still going whose row has not changed for as long are checked against their workflows.
    reconcile_interval_seconds: float = 30.0
    # How long a saga may show the same step in flight, with no other change, before that sweep takes its result as
    # lost: it stops the workflow and records WORKFLOW_FAILED, for an operator to resolve (orchestrator.sweep).
    stall_after_seconds: float = DEFAULT_STALL_AFTER.total_seconds()
    operator_allow_remote: bool = False  # POST /orders/{id}/resolve from clients not on this machine
    # How long a person has to approve an order the risk review left to them; fixed in each saga's input when the
    # order is accepted.
    approval_timeout_seconds: float = DEFAULT_APPROVAL_TIMEOUT_SECONDS


def load_api_settings(env: Mapping[str, str] | None = None) -> ApiSettings:
    env = os.environ if env is None else env
    return ApiSettings(
        wait_timeout_seconds=_seconds(env, "ORDER_WAIT_TIMEOUT_SECONDS", ApiSettings.wait_timeout_seconds, 600),
        app_urls=_app_urls(env),
        reconcile_interval_seconds=_seconds(
            env, "RECONCILE_INTERVAL_SECONDS", ApiSettings.reconcile_interval_seconds, 3600
        ),
        stall_after_seconds=_seconds(env, "STALL_AFTER_SECONDS", ApiSettings.stall_after_seconds, 30 * 24 * 3600),
        operator_allow_remote=read_setting(env, "OPERATOR_ALLOW_REMOTE", False, parse_bool),
        approval_timeout_seconds=_seconds(
            env, "APPROVAL_TIMEOUT_SECONDS", ApiSettings.approval_timeout_seconds, 30 * 24 * 3600
        ),
    )


def _seconds(env: Mapping[str, str], name: str, default: float, most: float) -> float:
    raw = (env.get(name) or "").strip()
    if not raw:
        return default
    try:
        value = float(raw)
    except ValueError:
        value = -1.0
    if not 0 < value <= most:
        raise SettingsError(f"{name}={raw!r}: expected a number of seconds in (0, {most:g}]")
    return value


def _app_urls(env: Mapping[str, str]) -> dict[str, str]:
    urls = _default_urls()
    for app in CONSOLE_APPS:
        name = f"{app.upper()}_URL"
        raw = (env.get(name) or "").strip()
        if not raw:
            continue
        parts = urlsplit(raw)
        if parts.scheme not in ("http", "https") or not parts.netloc:
            raise SettingsError(f"{name}={raw!r}: expected an http(s) URL such as http://127.0.0.1:8001")
        urls[app] = raw.rstrip("/")
    return urls
