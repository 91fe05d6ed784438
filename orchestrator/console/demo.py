"""What the console drives besides orders: the demo scenarios of ``common.scenarios`` run here, in the order-api, and
every app's faults, through each app's own ``/faults`` API (REST, the URLs of ``ApiSettings.app_urls``).

A scenario arms its faults for its own order, submits the order through the use cases, and is followed in the
background until the order finishes (cancelling it in flight when the scenario says so); its faults are cleared
then, whatever happened, or at once if the submission failed. An app keeps one fault per activity, so a scenario
that needs an activity another fault is armed on is refused (409) rather than replacing it, and a scenario clears
only the faults still armed for its own order.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Mapping
from typing import Any

import httpx
import msgspec

from common.contracts import ORDER_API
from common.scenarios import SCENARIOS, Fault, Scenario, fault_body, new_order_id, order_body
from orchestrator.api import OrderRequest, new_order
from orchestrator.domain import TERMINAL
from orchestrator.service import Orders

log = logging.getLogger(__name__)

# How long a scenario's order is followed before its faults are cleared anyway (a crash scenario waits for the
# app to restart; retries back off up to SAGA_RETRY_MAX_INTERVAL_MS).
FOLLOW_SECONDS = 180.0
POLL_SECONDS = 0.2


class DemoError(Exception):
    """An app could not be reached, or refused what the console asked it; ``status`` is the HTTP answer."""

    def __init__(self, detail: str, status: int = 502) -> None:
        super().__init__(detail)
        self.detail, self.status = detail, status


class Demo:
    """Runs scenarios and reaches the apps' fault APIs. ``urls``: app ID -> base URL, the order-api's own
    included. The HTTP client and the followers live in the app's event loop; ``close`` ends them."""

    def __init__(self, orders: Orders, urls: Mapping[str, str], transport: httpx.AsyncBaseTransport | None = None):
        self.orders, self.urls = orders, dict(urls)
        self._transport = transport
        self._client: httpx.AsyncClient | None = None
        self._followers: set[asyncio.Task[None]] = set()

    @property
    def client(self) -> httpx.AsyncClient:
        if self._client is None:
            self._client = httpx.AsyncClient(timeout=30, transport=self._transport)
        return self._client

    async def close(self) -> None:
        for task in list(self._followers):
            task.cancel()
        await asyncio.gather(*self._followers, return_exceptions=True)
        if self._client is not None:
            await self._client.aclose()

    # --- scenarios ----------------------------------------------------------------------------------------

    async def run(self, name: str) -> str:
        """Start scenario ``name``; its order's ID. DemoError 404 for an unknown name."""
        scenario = SCENARIOS.get(name)
        if scenario is None:
            raise DemoError(f"no scenario {name!r}; one of {', '.join(SCENARIOS)}", 404)
        order_id = new_order_id(scenario)
        armed: list[Fault] = []
        try:
            for fault in scenario.faults:
                await self._arm(fault, order_id)
                armed.append(fault)
            request = msgspec.convert(order_body(scenario, order_id), OrderRequest)
            await self.orders.submit(new_order(request), wait=False)
        except BaseException:
            await self._disarm(armed, order_id)
            raise
        follower = asyncio.get_running_loop().create_task(self._follow(scenario, order_id, armed))
        self._followers.add(follower)
        follower.add_done_callback(self._followers.discard)
        return order_id

    async def _follow(self, scenario: Scenario, order_id: str, armed: list[Fault]) -> None:
        deadline = time.monotonic() + FOLLOW_SECONDS
        cancelled = False
        try:
            while time.monotonic() < deadline:
                view = await self.orders.view(order_id)
                if view.status in TERMINAL:
                    return
                running = {step["name"] for step in view.steps if step.get("outcome") == "running"}
                if scenario.cancel_during in running and not cancelled:
                    await self.orders.cancel(order_id, "console scenario")
                    cancelled = True
                await asyncio.sleep(POLL_SECONDS)
            log.warning("%s: not finished after %.0f s; clearing its faults anyway", order_id, FOLLOW_SECONDS)
        except Exception:
            log.exception("%s: following the scenario failed; clearing its faults", order_id)
        finally:
            await self._disarm(armed, order_id)

    async def _arm(self, fault: Fault, order_id: str) -> None:
        current = await self._armed_on(fault)
        if current is not None and current.get("remaining") != 0:  # a spent fault is as good as none
            owner = f"order {current['order_id']}" if current.get("order_id") else "every order"
            raise DemoError(
                f"{fault.app} already has a {current['mode']} fault on {fault.activity} (for {owner}); "
                "wait for that scenario to end, or clear it",
                409,
            )
        response = await self._call("PUT", fault.app, f"/faults/{fault.activity}", json=fault_body(fault, order_id))
        if not response.is_success:
            raise DemoError(f"{fault.app} refused the fault on {fault.activity}: {_detail(response)}")

    async def _disarm(self, armed: list[Fault], order_id: str) -> None:
        for fault in armed:
            try:
                current = await self._armed_on(fault)
                if current is not None and current.get("order_id") == order_id:
                    await self._call("DELETE", fault.app, f"/faults/{fault.activity}")
            except (DemoError, asyncio.CancelledError) as err:
                log.warning("could not clear the %s fault on %s: %s", fault.activity, fault.app, err)

    async def _armed_on(self, fault: Fault) -> dict[str, Any] | None:
        response = await self._call("GET", fault.app, "/faults")
        if not response.is_success:
            raise DemoError(f"{fault.app} did not list its faults: {_detail(response)}")
        return next((f for f in response.json() if f["activity"] == fault.activity), None)

    # --- faults -------------------------------------------------------------------------------------------

    async def faults(self) -> list[dict[str, Any]]:
        """Every app's armed faults: ``{app, enabled, faults, error}`` (enabled False: its /faults is off)."""
        return list(await asyncio.gather(*(self._faults_of(app) for app in self.urls)))

    async def _faults_of(self, app: str) -> dict[str, Any]:
        try:
            response = await self._call("GET", app, "/faults")
        except DemoError as err:
            return {"app": app, "enabled": False, "faults": [], "error": err.detail}
        if response.status_code == 404:
            return {"app": app, "enabled": False, "faults": [], "error": "fault endpoints are off"}
        if not response.is_success:
            return {"app": app, "enabled": False, "faults": [], "error": _detail(response)}
        return {"app": app, "enabled": True, "faults": response.json(), "error": None}

    async def forward(self, method: str, app: str, path: str, body: Any = None) -> httpx.Response:
        """A fault call passed on to ``app`` as it is; its answer (a problem too) goes back as it is."""
        return await self._call(method, app, path, json=body)

    async def notifications(self, order_id: str) -> httpx.Response:
        return await self._call("GET", "notification", "/notifications", params={"order_id": order_id})

    async def _call(self, method: str, app: str, path: str, **kwargs: Any) -> httpx.Response:
        base = self.urls.get(app)
        if base is None:
            raise DemoError(f"no app {app!r}; one of {', '.join(self.urls)}", 404)
        try:
            return await self.client.request(method, base + path, **kwargs)
        except httpx.HTTPError as err:
            raise DemoError(f"{app} at {base} cannot be reached: {err!r}") from err


def self_url(host: str, port: int) -> str:
    """Where the order-api reaches its own REST API (its own /faults)."""
    reachable = "127.0.0.1" if host in ("", "0.0.0.0", "::", "localhost") else host
    return f"http://{'[' + reachable + ']' if ':' in reachable else reachable}:{port}"


def app_urls(order_api_url: str, others: Mapping[str, str]) -> dict[str, str]:
    return {ORDER_API: order_api_url, **others}


def _detail(response: httpx.Response) -> str:
    try:
        body = response.json()
    except ValueError:
        return f"{response.status_code} {response.text[:200]}"
    detail = body.get("detail") if isinstance(body, dict) else None
    return f"{response.status_code} {detail or response.text[:200]}"
