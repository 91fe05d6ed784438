"""``wake_child``: the order-api's workflow that wakes a saga's child workflow the engine created but never ran.

Only an app's own sidecar reaches that app's workflows, so it calls the ``WAKE_WORKFLOW`` activity on the child's
app, which raises the wake event to the child if it is still PENDING (``common.wake``: daprd 1.18.2 can drop a new
instance's start reminder). The reconcile sweep (``orchestrator.sweep``) starts one for a saga that has gone
quiet while a child runs; it changes nothing of the saga, which goes on waiting for its child.
"""

from __future__ import annotations

from typing import Any

from dapr.ext import workflow as wf

from common.contracts import WAKE_WORKFLOW, SagaRetry, WakeInput
from common.saga import Steps, retry_policy
from orchestrator.domain import WakeChildInput


def wake_child(ctx: wf.DaprWorkflowContext, payload: dict[str, Any]) -> Steps[dict[str, Any]]:
    request = WakeChildInput.model_validate(payload)
    asked = WakeInput(request.order_id, request.instance_id)
    result: dict[str, Any] = yield ctx.call_activity(
        WAKE_WORKFLOW, input=asked, app_id=request.app_id, retry_policy=retry_policy(SagaRetry())
    )
    return result
