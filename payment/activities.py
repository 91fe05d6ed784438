"""Workflow registrations of payment: its activities (thin wrappers that fire injected faults and call service.py),
its one workflow, ``risk_review`` (``payment.workflows``), which the order saga starts as a child workflow, and
``wake_workflow``, by which the order-api wakes a risk review the engine created but never ran (``common.wake``).

Activities run on the SDK worker's own thread and event loop, so they get their own ``Database``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from dapr.ext.workflow import WorkflowActivityContext, WorkflowRuntime

from common.activity import register_activities, run_activity
from common.contracts import (
    ASSESS_RISK,
    CHARGE,
    REFUND,
    RISK_REVIEW,
    WAKE_WORKFLOW,
    AssessRiskInput,
    ChargeInput,
    NonRetryableError,
    RiskAssessment,
    StepResult,
    UndoInput,
    UndoResult,
    WakeInput,
    WakeResult,
    idempotency_key,
)
from common.db import Database
from common.faults import FaultInjector
from common.settings import Settings
from common.wake import Waker
from payment import service
from payment.domain import InvalidCharge, RiskLimits
from payment.workflows import risk_review

ACTIVITIES = (CHARGE, REFUND, ASSESS_RISK, WAKE_WORKFLOW)
DEFAULT_LIMITS = RiskLimits()


def build_activities(
    db: Database, faults: FaultInjector, limits: RiskLimits = DEFAULT_LIMITS
) -> dict[str, Callable[..., Any]]:
    async def charge(ctx: WorkflowActivityContext, request: ChargeInput) -> StepResult:
        return await run_activity(
            faults, CHARGE, request.order_id, lambda: service.charge(db, request), permanent=(InvalidCharge,)
        )

    async def refund(ctx: WorkflowActivityContext, request: UndoInput) -> UndoResult:
        return await run_activity(faults, REFUND, request.order_id, lambda: service.refund(db, request))

    async def assess_risk(ctx: WorkflowActivityContext, request: AssessRiskInput) -> RiskAssessment:
        return await run_activity(
            faults, ASSESS_RISK, request.order_id, lambda: service.assess_risk(db, request, limits)
        )

    waker = Waker()

    async def wake_workflow(ctx: WorkflowActivityContext, request: WakeInput) -> WakeResult:
        if request.instance_id != idempotency_key(request.order_id, RISK_REVIEW):
            raise NonRetryableError(f"{request.instance_id!r} is not the risk review of order {request.order_id!r}")
        return await run_activity(
            faults, WAKE_WORKFLOW, request.order_id, lambda: waker.wake_if_pending(request.instance_id)
        )

    return {CHARGE: charge, REFUND: refund, ASSESS_RISK: assess_risk, WAKE_WORKFLOW: wake_workflow}


def register(runtime: WorkflowRuntime, settings: Settings, limits: RiskLimits = DEFAULT_LIMITS) -> None:
    runtime.register_workflow(risk_review, name=RISK_REVIEW)
    register_activities(runtime, settings, ACTIVITIES, lambda db, faults: build_activities(db, faults, limits))
