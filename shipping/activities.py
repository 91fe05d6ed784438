"""Workflow activities hosted by shipping: thin wrappers that fire injected faults and call service.py.

They run on the SDK worker's own thread and event loop, so they get their own ``Database``.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from dapr.ext.workflow import WorkflowActivityContext, WorkflowRuntime

from common.contracts import CANCEL_SHIPMENT, SHIP, ShipInput, StepResult, UndoInput, UndoResult
from common.db import Database
from common.faults import FaultInjector, NonRetryableError
from common.idempotency import IdempotencyConflict
from common.settings import Settings
from shipping import service

ACTIVITIES = (SHIP, CANCEL_SHIPMENT)
log = logging.getLogger(__name__)


def build_activities(db: Database, faults: FaultInjector) -> dict[str, Callable[..., Any]]:
    async def ship(ctx: WorkflowActivityContext, request: ShipInput) -> StepResult:
        await faults.before(SHIP, request.order_id)
        try:
            result = await service.ship(db, request)
        except IdempotencyConflict as exc:
            raise NonRetryableError(str(exc)) from exc  # retrying a malformed request cannot succeed
        log.info("ship %s: %s", request.order_id, result)
        await faults.after_commit(SHIP, request.order_id)
        return result

    async def cancel_shipment(ctx: WorkflowActivityContext, request: UndoInput) -> UndoResult:
        await faults.before(CANCEL_SHIPMENT, request.order_id)
        try:
            result = await service.cancel(db, request)
        except IdempotencyConflict as exc:
            raise NonRetryableError(str(exc)) from exc
        log.info("cancel_shipment %s: %s", request.order_id, result)
        await faults.after_commit(CANCEL_SHIPMENT, request.order_id)
        return result

    return {SHIP: ship, CANCEL_SHIPMENT: cancel_shipment}


def register(runtime: WorkflowRuntime, settings: Settings) -> None:
    assert settings.database_url, "run_service resolves the database before registering activities"
    db = Database(settings.database_url)
    faults = FaultInjector(db, ACTIVITIES, enabled=settings.faults_enabled)
    for name, activity in build_activities(db, faults).items():
        runtime.register_activity(activity, name=name)
