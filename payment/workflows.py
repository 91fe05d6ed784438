"""The workflow payment hosts: ``risk_review``, which the order saga starts as a child workflow in this app, before it
charges. Deterministic orchestration only, like the saga: it checks the chain of custody from the history the engine
hands it (the saga's own, propagated with ``LINEAGE``), then runs ``assess_risk`` on payment, which weighs the
customer's payment history and records the decision. It returns the decision, the check and its own steps.

``lineage`` turns the SDK's propagated history into the plain ``Caller`` values ``domain.check_custody`` reads.
"""

from __future__ import annotations

import json
from typing import Any

from dapr.ext import workflow as wf
from dapr.ext.workflow.propagation import PropagatedHistory

from common.contracts import (
    ASSESS_RISK,
    AssessRiskInput,
    RiskAssessment,
    RiskDecision,
    RiskReviewInput,
    idempotency_key,
)
from common.outcomes import REFUSED, SUCCEEDED, SagaAborted
from common.saga import Saga, Steps, retry_policy
from payment.domain import Call, Caller, check_custody

CHECK_CUSTODY = "check_custody"  # a step of the review decided in the workflow itself, from its propagated history


class RiskReviewFailed(Exception):
    """The assessment still failed after its retries: the review fails, and the saga's retry policy decides."""


def risk_review(ctx: wf.DaprWorkflowContext, payload: dict[str, Any]) -> Steps[dict[str, Any]]:
    request = RiskReviewInput.model_validate(payload)
    review = Saga(ctx, retry_policy(request.retry))
    custody = check_custody(lineage(ctx.get_propagated_history()), request.order_id, request.amount_cents)
    review.note(CHECK_CUSTODY, None, SUCCEEDED if custody.ok else REFUSED, custody.reason)
    assess = AssessRiskInput(
        request.order_id,
        request.customer_id,
        request.amount_cents,
        custody,
        idempotency_key(request.order_id, ASSESS_RISK),
    )
    try:
        assessment = yield from review.step(ASSESS_RISK, None, assess, RiskAssessment)
    except SagaAborted as failed:
        review.flush()
        raise RiskReviewFailed(failed.reason) from None
    review.flush()
    return RiskDecision(assessment.decision, assessment.reason, assessment.facts, custody, review.steps).model_dump()


def lineage(history: PropagatedHistory | None) -> list[Caller] | None:
    """The workflows of a propagated history, oldest first, each with the activities it called: where each ran (its
    router's target app, else the workflow's own) and how it ended. None when nothing was propagated."""
    if history is None:
        return None
    return [
        Caller(w.app_id, w.instance_id, w.name, _calls(history.get_events_by_instance_id(w.instance_id), w.app_id))
        for w in history.get_workflows()
    ]


def _calls(events: list[Any], own_app: str) -> tuple[Call, ...]:
    scheduled: dict[int, Call] = {}
    for event in events:
        kind = event.WhichOneof("eventType")
        if kind == "taskScheduled":
            app = event.router.targetAppID if event.HasField("router") and event.router.targetAppID else own_app
            scheduled[event.eventId] = Call(event.taskScheduled.name, app, "scheduled")
        elif kind == "taskCompleted" and (call := scheduled.get(event.taskCompleted.taskScheduledId)) is not None:
            result = _json(event.taskCompleted.result.value) if event.taskCompleted.HasField("result") else None
            scheduled[event.taskCompleted.taskScheduledId] = Call(call.name, call.app, "completed", result)
        elif kind == "taskFailed" and (call := scheduled.get(event.taskFailed.taskScheduledId)) is not None:
            scheduled[event.taskFailed.taskScheduledId] = Call(call.name, call.app, "failed")
    return tuple(scheduled.values())


def _json(text: str) -> Any:
    try:
        return json.loads(text)
    except ValueError:
        return None
