"""Workflow activities hosted by inventory: thin wrappers that fire injected faults and call service.py.

They run on the SDK worker's own thread and event loop, so they get their own ``Database``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from dapr.ext.workflow import WorkflowActivityContext, WorkflowRuntime

from common.activity import register_activities, run_activity
from common.contracts import (
    RELEASE_INVENTORY,
    RESERVE_INVENTORY,
    VALIDATE_ORDER,
    ReserveInventoryInput,
    StepResult,
    UndoInput,
    UndoResult,
    ValidateOrderInput,
    ValidateOrderResult,
)
from common.db import Database
from common.faults import FaultInjector
from common.settings import Settings
from inventory import service

ACTIVITIES = (VALIDATE_ORDER, RESERVE_INVENTORY, RELEASE_INVENTORY)


def build_activities(db: Database, faults: FaultInjector, max_quantity: int) -> dict[str, Callable[..., Any]]:
    async def validate_order(ctx: WorkflowActivityContext, request: ValidateOrderInput) -> ValidateOrderResult:
        return await run_activity(
            faults, VALIDATE_ORDER, request.order_id, lambda: service.validate_order(db, request, max_quantity)
        )

    async def reserve_inventory(ctx: WorkflowActivityContext, request: ReserveInventoryInput) -> StepResult:
        return await run_activity(
            faults, RESERVE_INVENTORY, request.order_id, lambda: service.reserve(db, request, max_quantity)
        )

    async def release_inventory(ctx: WorkflowActivityContext, request: UndoInput) -> UndoResult:
        return await run_activity(faults, RELEASE_INVENTORY, request.order_id, lambda: service.release(db, request))

    return {VALIDATE_ORDER: validate_order, RESERVE_INVENTORY: reserve_inventory, RELEASE_INVENTORY: release_inventory}


def register(runtime: WorkflowRuntime, settings: Settings) -> None:
    register_activities(
        runtime, settings, ACTIVITIES, lambda db, faults: build_activities(db, faults, settings.max_quantity_per_item)
    )
