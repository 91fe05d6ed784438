"""Workflow registrations of payment: its activities (thin wrappers that fire injected faults and call service.py)
and its one workflow, ``risk_review`` (``payment.workflows``), which the order saga starts as a child workflow.

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
    AssessRiskInput,
    ChargeInput,
    RiskAssessment,
    StepResult,
    UndoInput,
    UndoResult,
)
from common.db import Database
from common.faults import FaultInjector
from common.settings import Settings
from payment import service
from payment.domain import InvalidCharge, RiskLimits
from payment.workflows import risk_review

ACTIVITIES = (CHARGE, REFUND, ASSESS_RISK)
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

    return {CHARGE: charge, REFUND: refund, ASSESS_RISK: assess_risk}


def register(runtime: WorkflowRuntime, settings: Settings, limits: RiskLimits = DEFAULT_LIMITS) -> None:
    runtime.register_workflow(risk_review, name=RISK_REVIEW)
    register_activities(runtime, settings, ACTIVITIES, lambda db, faults: build_activities(db, faults, limits))
