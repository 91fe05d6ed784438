"""Workflow activities hosted by payment: thin wrappers that fire injected faults and call service.py.

They run on the SDK worker's own thread and event loop, so they get their own ``Database``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from dapr.ext.workflow import WorkflowActivityContext, WorkflowRuntime

from common.activity import register_activities, run_activity
from common.contracts import CHARGE, REFUND, ChargeInput, StepResult, UndoInput, UndoResult
from common.db import Database
from common.faults import FaultInjector
from common.settings import Settings
from payment import service
from payment.domain import InvalidCharge

ACTIVITIES = (CHARGE, REFUND)


def build_activities(db: Database, faults: FaultInjector) -> dict[str, Callable[..., Any]]:
    async def charge(ctx: WorkflowActivityContext, request: ChargeInput) -> StepResult:
        return await run_activity(
            faults, CHARGE, request.order_id, lambda: service.charge(db, request), permanent=(InvalidCharge,)
        )

    async def refund(ctx: WorkflowActivityContext, request: UndoInput) -> UndoResult:
        return await run_activity(faults, REFUND, request.order_id, lambda: service.refund(db, request))

    return {CHARGE: charge, REFUND: refund}


def register(runtime: WorkflowRuntime, settings: Settings) -> None:
    register_activities(runtime, settings, ACTIVITIES, build_activities)
