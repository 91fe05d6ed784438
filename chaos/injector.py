"""The injector: carries out the plan's disruptions as the workload reaches them (a fault armed through an app's
``PUT /faults/{activity}``, an app, a daprd, placement, the scheduler, sentry or the runner SIGKILLed, PostgreSQL
restarted; in a cluster a node crashed, paused or cut off), one at a time, in plan order, and records what each
one did. Also clears every fault at the end.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import httpx

from common.contracts import RISK_REVIEW
from orchestrator.domain import TERMINAL

from .cluster import ClusterSystem
from .schedule import APPS, Disruption
from .system import ChaosSetupError, System
from .workload import Progress

ARM_TIMEOUT_S = 60.0
AIM_TIMEOUT_S = 30.0  # how long a kill aimed at an order's moment waits for the order to get there


@dataclass
class Event:
    at_s: float  # seconds since the run began
    disruption: Disruption
    outcome: str
    done: bool  # False: it could not be carried out (e.g. the app stayed down); said in the report


@dataclass
class Injected:
    events: list[Event] = field(default_factory=list)
    survivors: list[str] = field(default_factory=list)  # processes a SIGKILLed runner left running


async def inject(
    system: System | ClusterSystem,
    plan: list[Disruption],
    progress: Progress,
    t0: float,
    say: Callable[[str], None],
    out: Injected,
) -> None:
    """Carry out ``plan``, recording into ``out`` as it goes (the progress lines read it)."""
    async with httpx.AsyncClient(timeout=10) as client:
        for disruption in plan:
            await progress.wait_submitted(disruption.at + 1)
            try:
                outcome, done = await _carry_out(system, client, disruption, out)
            except ChaosSetupError:
                raise  # the system is gone (a runner that does not come back): nothing left to disrupt
            except Exception as err:
                outcome, done = f"failed: {type(err).__name__}: {err}", False
            event = Event(round(time.monotonic() - t0, 1), disruption, outcome, done)
            out.events.append(event)
            say(f"+{event.at_s:7.1f}s after order #{disruption.at}: {disruption.describe()}: {outcome}")


async def _carry_out(
    system: System | ClusterSystem, client: httpx.AsyncClient, d: Disruption, out: Injected
) -> tuple[str, bool]:
    if d.kind == "fault":
        assert system.layout is not None and d.app is not None
        url = f"{system.layout.urls[d.app]}/faults/{d.activity}"
        await _until_ok(client, "PUT", url, d.fault_body())
        return "armed", True
    if d.kind == "kill_app":
        assert d.app is not None
        if d.while_ is not None and not await _reached(system, client, d):
            return f"{d.order_id} was not {d.while_} within {AIM_TIMEOUT_S:.0f} s (it ended, or faults held it)", False
        outcome = await asyncio.to_thread(system.kill_app, d.app)
        return outcome, outcome.startswith("killed")
    if d.kind == "kill_runner":
        outcome, survivors = await asyncio.to_thread(system.kill_runner)
        out.survivors += survivors
        return outcome + (f"; {len(survivors)} outlived it" if survivors else ""), True
    if d.kind == "restart_postgres":
        return await asyncio.to_thread(system.restart_postgres), True
    if d.kind in ("kill_daprd", "kill_control_plane"):
        assert d.app is not None
        kill = system.kill_daprd if d.kind == "kill_daprd" else system.kill_control_plane
        outcome = await asyncio.to_thread(kill, d.app)
        return outcome, outcome.startswith("killed")
    if d.kind in ("crash_node", "pause_node", "partition_node"):
        assert isinstance(system, ClusterSystem) and d.app is not None
        if d.kind == "crash_node":
            return await asyncio.to_thread(system.crash_node, d.app), True
        seconds = float(d.seconds or 0)
        if d.kind == "pause_node":
            return await system.pause_node(d.app, seconds), True
        return await system.partition_node(d.app, seconds), True
    raise ValueError(f"unknown disruption {d.kind!r}")


async def _reached(system: System | ClusterSystem, client: httpx.AsyncClient, d: Disruption) -> bool:
    """Wait until the order a kill is aimed at is at its moment: its risk review running, or awaiting approval."""
    assert system.layout is not None
    url = f"{system.layout.urls['order-api']}/orders/{d.order_id}"
    deadline = time.monotonic() + AIM_TIMEOUT_S
    while time.monotonic() < deadline:
        try:
            response = await client.get(url)
            view = response.json() if response.status_code == 200 else None
        except (httpx.TransportError, ValueError):
            view = None
        if view is not None:
            if view["status"] in TERMINAL:
                return False
            if d.while_ == "awaiting" and view["status"] == "AWAITING_APPROVAL":
                return True
            running = {s["name"] for s in view["steps"] if s["outcome"] == "running"}
            if d.while_ == "reviewing" and RISK_REVIEW in running:
                return True
        await asyncio.sleep(0.1)
    return False


async def clear_faults(system: System | ClusterSystem) -> None:
    """``DELETE /faults`` on every app (repeated while an app is restarting)."""
    assert system.layout is not None
    async with httpx.AsyncClient(timeout=10) as client:
        for app in APPS:
            await _until_ok(client, "DELETE", f"{system.layout.urls[app]}/faults", None)


async def _until_ok(client: httpx.AsyncClient, method: str, url: str, body: dict[str, Any] | None) -> None:
    deadline = time.monotonic() + ARM_TIMEOUT_S
    while True:
        try:
            response = await client.request(method, url, json=body)
            if response.is_success:
                return
            if response.status_code < 500:
                raise RuntimeError(f"{method} {url} answered {response.status_code}: {response.text[:200]}")
        except httpx.TransportError:
            pass
        if time.monotonic() > deadline:
            raise TimeoutError(f"{method} {url}: no answer within {ARM_TIMEOUT_S:.0f} s")
        await asyncio.sleep(0.3)
