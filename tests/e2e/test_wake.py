"""End-to-end, on both engines: the order-api wakes a saga's child workflow that the engine created but never ran
(``orchestrator.wake``, ``common.wake``). daprd 1.18.2 can drop a new instance's start reminder, leaving it PENDING
with nothing to run it; only the child's own app can reach it. A risk review scheduled on payment to start a day
from now stands for such a child here: PENDING, nothing due to run it soon. The order-api's ``wake_child``
workflow calls payment's ``wake_workflow`` activity, which raises the wake event to it, and the review runs.
"""

from __future__ import annotations

import json
import time
from datetime import UTC, datetime, timedelta

import pytest
from dapr.conf import settings as dapr_settings
from dapr.ext.workflow import DaprWorkflowClient, WorkflowState, WorkflowStatus

from common.contracts import PAYMENT, RISK_REVIEW, RiskReviewInput, idempotency_key
from orchestrator.domain import WAKE_CHILD, WakeChildInput
from tests.support.orders import new_id


def test_the_order_api_has_payment_wake_a_risk_review_left_pending(system, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(dapr_settings, "DAPR_API_TOKEN", system.api_token)
    payment = DaprWorkflowClient(host="127.0.0.1", port=str(system.engine_grpc[PAYMENT]))
    order_api = DaprWorkflowClient(host="127.0.0.1", port=str(system.engine_grpc["order-api"]))
    order_id = new_id("wake")
    child = idempotency_key(order_id, RISK_REVIEW)
    review = RiskReviewInput(order_id, "c-wake", 1200, idempotency_key(child, "assess"))
    payment.schedule_new_workflow(
        RISK_REVIEW, input=review, instance_id=child, start_at=datetime.now(UTC) + timedelta(days=1)
    )
    left = payment.get_workflow_state(child)
    assert left is not None and left.runtime_status == WorkflowStatus.PENDING

    def wake(instance_id: str, of_order: str = order_id) -> WorkflowState:
        asked = WakeChildInput(of_order, PAYMENT, instance_id)
        wake_id = f"{instance_id}:wake:{new_id('w')}"
        order_api.schedule_new_workflow(WAKE_CHILD, input=asked, instance_id=wake_id)
        done = order_api.wait_for_workflow_completion(wake_id, timeout_in_seconds=60)
        assert done is not None
        return done

    def woken(instance_id: str, of_order: str = order_id) -> object:
        done = wake(instance_id, of_order)
        assert done.runtime_status == WorkflowStatus.COMPLETED, done.failure_details
        return json.loads(done.serialized_output or "null")

    assert woken(child) == {"runtime_status": "PENDING", "woken": True}
    if system.engine == "dapr":
        # daprd runs an instance an event was raised to, whatever its start time: the review runs now (and rejects:
        # nobody handed it a saga's history) and a second wake leaves it alone.
        ran = _until_finished(payment, child)
        assert ran.runtime_status == WorkflowStatus.COMPLETED, ran.failure_details
        assert json.loads(ran.serialized_output or "null")["decision"] == "reject"
        assert woken(child) == {"runtime_status": "COMPLETED", "woken": False}
    else:
        # The sidecar keeps the start time (it has no dropped starts to wake: a start is one transaction there), so
        # the review waits for it; the wake event went to it all the same, and another one would too.
        assert woken(child) == {"runtime_status": "PENDING", "woken": True}
        payment.terminate_workflow(child)
    nobody = new_id("none")
    assert woken(idempotency_key(nobody, RISK_REVIEW), nobody) == {"runtime_status": None, "woken": False}
    # payment wakes only the risk review of the order named: any other instance ID fails the wake, raising nothing.
    refused = wake(idempotency_key(nobody, RISK_REVIEW))
    assert refused.runtime_status == WorkflowStatus.FAILED
    assert refused.failure_details is not None and "is not the risk review of order" in refused.failure_details.message
    payment.close()
    order_api.close()


def _until_finished(client: DaprWorkflowClient, instance_id: str, seconds: float = 60) -> WorkflowState:
    deadline = time.monotonic() + seconds
    while True:
        state = client.get_workflow_state(instance_id)
        assert state is not None
        if state.runtime_status not in (WorkflowStatus.PENDING, WorkflowStatus.RUNNING) or time.monotonic() > deadline:
            return state
        time.sleep(0.5)
