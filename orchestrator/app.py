"""The order-api HTTP app: the only place its parts are wired together (the orders API, its console at /console,
its faults, its OpenAPI document and docs page)."""

from __future__ import annotations

import asyncio
import logging
from datetime import timedelta

from litestar import Litestar
from litestar.datastructures import State
from litestar.di import Provide
from litestar.openapi.spec import Schema
from litestar.types import ControllerRouterHandler

from common import telemetry
from common.db import Database
from common.fault_api import fault_router
from common.faults import FaultInjector
from common.openapi import docs_assets_router, openapi_config
from common.problems import forbid_unknown_fields_in_docs, problem_config
from common.runner import healthz
from common.settings import Settings
from orchestrator.activities import ACTIVITIES
from orchestrator.api import PROBLEMS, OrderController
from orchestrator.console import console_router
from orchestrator.console.demo import Demo, app_urls, self_url
from orchestrator.saga_client import SagaClient
from orchestrator.service import START_CLAIM_TTL, Orders
from orchestrator.settings import ApiSettings
from orchestrator.sweep import Sweep

log = logging.getLogger(__name__)


def create_app(settings: Settings, api: ApiSettings | None = None, sagas: SagaClient | None = None) -> Litestar:
    if not settings.database_url:
        raise ValueError("settings.database_url is required (run_service resolves it)")
    api = api or ApiSettings()
    db = Database(settings.database_url)
    orders = Orders(
        db,
        sagas or SagaClient(),
        settings.retry,
        api.wait_timeout_seconds,
        approval_timeout_seconds=api.approval_timeout_seconds,
    )
    sweep = Sweep(orders, stall_after=timedelta(seconds=api.stall_after_seconds))
    demo = Demo(orders, app_urls(self_url(settings.host, settings.port), api.app_urls))
    handlers: list[ControllerRouterHandler] = [
        healthz,
        OrderController,
        docs_assets_router(),
        console_router(demo, faults_enabled=settings.faults_enabled, allow_remote=settings.faults_allow_remote),
    ]
    if settings.faults_enabled:
        handlers.append(fault_router(FaultInjector(db, ACTIVITIES, enabled=True), settings.faults_allow_remote))
    background: set[asyncio.Task[None]] = set()

    def start_resuming() -> None:
        sweeps = (
            _resume_pending(orders),
            _resume_after_stale_claims(orders),
            _reconcile_quiet_orders(sweep, api.reconcile_interval_seconds),
        )
        for job in sweeps:
            task = asyncio.get_running_loop().create_task(job)
            background.add(task)
            task.add_done_callback(background.discard)

    def stop_resuming() -> None:
        for task in background:
            task.cancel()

    app = forbid_unknown_fields_in_docs(
        Litestar(
            route_handlers=handlers,
            dependencies={"orders": Provide(lambda: orders, sync_to_thread=False)},
            on_startup=[start_resuming],
            state=State({"operator_allow_remote": api.operator_allow_remote}),
            on_shutdown=[stop_resuming, orders.stop_watching, demo.close, db.dispose],
            openapi_config=openapi_config(
                "order-api", "Submit, follow, cancel, approve or reject orders run by the order saga."
            ),
            **problem_config(PROBLEMS, plugins=telemetry.litestar_plugins()),
        )
    )
    # Each sku once: JSON Schema cannot say "unique by sku", but it can say "no two items alike".
    order_request = (app.openapi_schema.components.schemas or {}).get("OrderRequest")
    items = (order_request.properties or {}).get("items") if isinstance(order_request, Schema) else None
    if not isinstance(items, Schema):
        raise RuntimeError("the OpenAPI document has no inline schema for OrderRequest.items")
    items.unique_items = True
    return app


async def _resume_after_stale_claims(orders: Orders) -> None:
    # A process that died while starting a saga leaves its claim on the row; once the claim is stale, sweep again.
    await asyncio.sleep(START_CLAIM_TTL.total_seconds())
    await _resume_pending(orders)


async def _reconcile_quiet_orders(sweep: Sweep, every: float) -> None:
    # Orders whose row lags their workflow: a saga's end nobody recorded (a watcher lost in a restart, a write that
    # failed), or a workflow that failed outside the saga. Anyone reading such an order brings its row up to date;
    # this covers the rest.
    while True:
        await asyncio.sleep(every)
        try:
            if changed := await sweep.run(timedelta(seconds=every)):
                log.info("brought %d order(s) up to date with their workflows", changed)
        except Exception as err:
            log.warning("could not reconcile orders with their workflows (will try again): %s", err)


async def _resume_pending(orders: Orders) -> None:
    # Orders stored just before a crash, never scheduled. Best effort: a repeated POST also starts them.
    try:
        if started := await orders.resume_pending():
            log.warning("started the sagas of %d order(s) left PENDING by an earlier run", started)
    except Exception:
        log.exception("could not resume PENDING orders; a repeated POST /orders starts each of them")
