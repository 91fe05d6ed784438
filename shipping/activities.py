"""Workflow activities hosted by shipping: thin wrappers that fire injected faults and call service.py.

They run on the SDK worker's own thread and event loop, so they get their own ``Database``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from dapr.ext.workflow import WorkflowActivityContext, WorkflowRuntime

from common.activity import register_activities, run_activity
from common.contracts import CANCEL_SHIPMENT, SHIP, ShipInput, StepResult, UndoInput, UndoResult
from common.db import Database
from common.faults import FaultInjector
from common.settings import Settings
from shipping import service

ACTIVITIES = (SHIP, CANCEL_SHIPMENT)


def build_activities(db: Database, faults: FaultInjector) -> dict[str, Callable[..., Any]]:
    async def ship(ctx: WorkflowActivityContext, request: ShipInput) -> StepResult:
        return await run_activity(faults, SHIP, request.order_id, lambda: service.ship(db, request))

    async def cancel_shipment(ctx: WorkflowActivityContext, request: UndoInput) -> UndoResult:
        return await run_activity(faults, CANCEL_SHIPMENT, request.order_id, lambda: service.cancel(db, request))

    return {SHIP: ship, CANCEL_SHIPMENT: cancel_shipment}


def register(runtime: WorkflowRuntime, settings: Settings) -> None:
    register_activities(runtime, settings, ACTIVITIES, build_activities)
