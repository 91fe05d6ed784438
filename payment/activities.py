"""Workflow activities hosted by payment: thin wrappers that fire injected faults and call service.py.

They run on the SDK worker's own thread and event loop, so they get their own ``Database``.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from dapr.ext.workflow import WorkflowActivityContext, WorkflowRuntime

from common.contracts import CHARGE, REFUND, ChargeInput, StepResult, UndoInput, UndoResult
from common.db import Database
from common.faults import FaultInjector, NonRetryableError
from common.idempotency import IdempotencyConflict
from common.settings import Settings
from payment import service
from payment.domain import InvalidCharge

ACTIVITIES = (CHARGE, REFUND)
log = logging.getLogger(__name__)


def build_activities(db: Database, faults: FaultInjector) -> dict[str, Callable[..., Any]]:
    async def charge(ctx: WorkflowActivityContext, request: ChargeInput) -> StepResult:
        await faults.before(CHARGE, request.order_id)
        try:
            result = await service.charge(db, request)
        except (InvalidCharge, IdempotencyConflict) as exc:
            raise NonRetryableError(str(exc)) from exc  # retrying a malformed request cannot succeed
        log.info("charge %s: %s", request.order_id, result)
        await faults.after_commit(CHARGE, request.order_id)
        return result

    async def refund(ctx: WorkflowActivityContext, request: UndoInput) -> UndoResult:
        await faults.before(REFUND, request.order_id)
        try:
            result = await service.refund(db, request)
        except IdempotencyConflict as exc:
            raise NonRetryableError(str(exc)) from exc
        log.info("refund %s: %s", request.order_id, result)
        await faults.after_commit(REFUND, request.order_id)
        return result

    return {CHARGE: charge, REFUND: refund}


def register(runtime: WorkflowRuntime, settings: Settings) -> None:
    assert settings.database_url, "run_service resolves the database before registering activities"
    db = Database(settings.database_url)
    faults = FaultInjector(db, ACTIVITIES, enabled=settings.faults_enabled)
    for name, activity in build_activities(db, faults).items():
        runtime.register_activity(activity, name=name)
