"""The saga console: a web page at ``/console`` (``static/``: HTML, three small vanilla JS modules, CSS; nothing from
the network) that polls the order-api's JSON, plus the few endpoints only it needs, under ``/console/api``.

The page reads what anyone can read (orders, their history, what the customer was told). What changes the system,
the demo scenarios and every app's faults, is mounted only with FAULTS_ENABLED and answers clients on this machine
only unless FAULTS_ALLOW_REMOTE, as the apps' own /faults endpoints do. None of it is in the OpenAPI document: it is
the page's private API, not the order-api's.
"""

from __future__ import annotations

import contextlib
from pathlib import Path
from typing import Any

import httpx
from litestar import MediaType, Request, Response, Router, delete, get, post, put
from litestar.di import NamedDependency, Provide
from litestar.params import FromPath, JSONBody
from litestar.static_files import create_static_files_router
from litestar.status_codes import HTTP_202_ACCEPTED

from common.contracts import ACTIVITY_APP, ASSESS_RISK, ORDER_API, PAYMENT
from common.fault_api import loopback_only, on_this_machine
from common.problems import problem
from common.scenarios import SCENARIOS
from orchestrator.console.demo import Demo, DemoError
from orchestrator.domain import RECORD_ORDER_STATUS

STATIC = Path(__file__).with_name("static")
# Which activities each app hosts, for the fault form (the apps' /faults answer 404 for any other name): the
# saga's, and payment's own assess_risk, which its risk review calls.
HOSTED = {**ACTIVITY_APP, ASSESS_RISK: PAYMENT}
ACTIVITIES = {ORDER_API: [RECORD_ORDER_STATUS]} | {
    app: [name for name, host in HOSTED.items() if host == app] for app in dict.fromkeys(HOSTED.values())
}


def console_router(demo: Demo, *, faults_enabled: bool, allow_remote: bool) -> Router:
    """``/console``: the page (also at ``/console/orders/{order_id}``, the link of one order), its assets and
    its API. ``demo`` runs scenarios and reaches the apps' faults; its ``close`` belongs to the app's shutdown."""
    page = (STATIC / "index.html").read_bytes()

    @get(["/", "/orders/{order_id:str}"], media_type=MediaType.HTML, sync_to_thread=False)
    def console_page() -> bytes:
        return page

    @get("/api/config", sync_to_thread=False)
    def config(request: Request[Any, Any, Any]) -> dict[str, Any]:
        """What the page may offer this client: the scenarios and fault controls, or why not."""
        why_not = None
        if not faults_enabled:
            why_not = "FAULTS_ENABLED is not true: scenarios and faults are off"
        elif not allow_remote and not on_this_machine(request.client.host if request.client else None):
            why_not = "scenarios and faults answer clients on this machine only (FAULTS_ALLOW_REMOTE is not true)"
        return {
            "controls": why_not is None,
            "why_not": why_not,
            "scenarios": [{"name": s.name, "summary": s.summary, "expect": s.expect} for s in SCENARIOS.values()],
            "apps": demo.urls,
            "activities": ACTIVITIES,
        }

    @get("/api/orders/{order_id:str}/notifications")
    async def notifications(demo: NamedDependency[Demo], order_id: FromPath[str]) -> Response[bytes]:
        """What the customer was told: the notification app's record of this order."""
        return _passed_on(await _as_problem(demo.notifications(order_id)))

    handlers: list[Any] = [
        console_page,
        config,
        notifications,
        create_static_files_router(path="/static", directories=[STATIC], name="console-static"),
    ]
    if faults_enabled:
        handlers.append(
            Router(
                path="/api",
                route_handlers=[run_scenario, list_faults, set_fault, clear_fault, clear_app_faults, clear_all_faults],
                guards=[] if allow_remote else [loopback_only],
            )
        )
    return Router(
        path="/console",
        route_handlers=handlers,
        dependencies={"demo": Provide(lambda: demo, sync_to_thread=False)},
        include_in_schema=False,
    )


@post("/scenarios/{name:str}", status_code=HTTP_202_ACCEPTED)
async def run_scenario(demo: NamedDependency[Demo], name: FromPath[str]) -> dict[str, str]:
    """Start a demo scenario: its faults armed for its order, the order submitted; 202 with the order's ID."""
    order_id = await _as_problem(demo.run(name))
    return {"order_id": order_id, "scenario": name, "console": f"/console/orders/{order_id}"}


@get("/faults")
async def list_faults(demo: NamedDependency[Demo]) -> list[dict[str, Any]]:
    return await demo.faults()


@put("/faults/{app:str}/{activity:str}")
async def set_fault(
    demo: NamedDependency[Demo], app: FromPath[str], activity: FromPath[str], data: JSONBody[dict[str, Any]]
) -> Response[bytes]:
    return _passed_on(await _as_problem(demo.forward("PUT", app, f"/faults/{activity}", data)))


@delete("/faults/{app:str}/{activity:str}", status_code=200)
async def clear_fault(demo: NamedDependency[Demo], app: FromPath[str], activity: FromPath[str]) -> Response[bytes]:
    return _passed_on(await _as_problem(demo.forward("DELETE", app, f"/faults/{activity}")))


@delete("/faults/{app:str}", status_code=200)
async def clear_app_faults(demo: NamedDependency[Demo], app: FromPath[str]) -> Response[bytes]:
    return _passed_on(await _as_problem(demo.forward("DELETE", app, "/faults")))


@delete("/faults", status_code=200)
async def clear_all_faults(demo: NamedDependency[Demo]) -> list[dict[str, Any]]:
    """Clear the faults of every app whose fault endpoints are on; every app's faults afterwards."""
    for app in demo.urls:
        with contextlib.suppress(DemoError):  # an app that cannot be reached says so in the listing below
            await demo.forward("DELETE", app, "/faults")
    return await demo.faults()


async def _as_problem(call: Any) -> Any:
    """``await call``, a DemoError raised as the problem details it stands for."""
    try:
        return await call
    except DemoError as err:
        raise problem(err.status, err.detail) from err


def _passed_on(upstream: httpx.Response) -> Response[bytes]:
    return Response(
        upstream.content,
        status_code=upstream.status_code,
        media_type=upstream.headers.get("content-type", MediaType.JSON),
    )
