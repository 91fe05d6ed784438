"""The banner ``make run`` and ``make run-dapr`` print once the system is up: where the console, each app's API and
docs page are, and how to use ``shop``. ``devtools.devdb run --banner TEMPLATE`` watches the apps of the run
template (dapr.yaml) and prints it when every app's /healthz and the console answer; the runners themselves (the
sidecar's, realdapr's) are left as they are."""

from __future__ import annotations

import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TextIO

import httpx
import yaml

from common.contracts import ORDER_API
from common.openapi import DOCS_PATH

POLL_SECONDS = 0.5


@dataclass(frozen=True)
class App:
    app_id: str
    url: str


def apps_of(template: Path) -> list[App]:
    """The apps of a run template with a REST API (an ``appPort``), each with the URL it answers on."""
    data = yaml.safe_load(template.read_text())
    common_env = (data.get("common") or {}).get("env") or {}
    apps = []
    for app in data.get("apps") or []:
        if not app.get("appPort"):
            continue
        env = {**common_env, **(app.get("env") or {})}
        host = str(env.get("APP_HOST") or "127.0.0.1")
        host = "127.0.0.1" if host in ("0.0.0.0", "::", "") else host
        apps.append(App(str(app["appID"]), f"http://{host}:{app['appPort']}"))
    return apps


def banner(apps: list[App], shop: str = "shop") -> str:
    width = max(len(a.app_id) for a in apps)
    lines = ["", "=" * 100, "The shop is up."]
    order_api = next((a for a in apps if a.app_id == ORDER_API), None)
    if order_api is not None:
        lines.append(f"  {'console':<{width}}  {order_api.url}/console")
    for app in apps:
        lines.append(f"  {app.app_id:<{width}}  API {app.url:<24}  docs {app.url}{DOCS_PATH}")
    lines += [
        f"  {'shop':<{width}}  {shop} submit --scenario declined --watch   ({shop} scenarios, {shop} --help)",
        "Ctrl-C stops everything.",
        "=" * 100,
        "",
    ]
    return "\n".join(lines)


def up(apps: list[App]) -> bool:
    """Every app's /healthz answers, and the order-api's console does."""
    urls = [f"{a.url}/healthz" for a in apps] + [f"{a.url}/console" for a in apps if a.app_id == ORDER_API]
    try:
        return all(httpx.get(url, timeout=2).is_success for url in urls)
    except httpx.HTTPError:
        return False


def announce_when_up(
    apps: list[App], running: Callable[[], bool], out: TextIO = sys.stdout, shop: str = "shop"
) -> threading.Thread:
    """Print the banner once, from a daemon thread, as soon as the system is up (never if it stops first)."""

    def watch() -> None:
        while running():
            if up(apps):
                print(banner(apps, shop), file=out, flush=True)
                return
            time.sleep(POLL_SECONDS)

    thread = threading.Thread(target=watch, name="banner", daemon=True)
    thread.start()
    return thread


def shop_command() -> str:
    """How to call ``shop`` from here: the script beside this interpreter, relative when it is below cwd."""
    script = Path(sys.executable).with_name("shop")
    if not script.exists():
        return "shop"
    try:
        return str(script.relative_to(Path.cwd()))
    except ValueError:
        return str(script)
