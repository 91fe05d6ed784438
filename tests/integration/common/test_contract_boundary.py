"""A payload that breaks an activity's contract fails that activity once, for good, naming the field: the SDK
builds the contract (``model_validate``) before the activity body runs, and never retries an error whose class
is ``NonRetryableError``, whatever the retry policy says.

Real parts: ``python -m sidecar serve`` in a subprocess, the SDK's worker and client in this process, the
payment contract ``ChargeInput`` on the activity's parameter as the services annotate theirs.
"""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import dapr.ext.workflow as wf
import pytest

from common.contracts import ChargeInput
from tests.support.processes import sidecar_serving

RAN: list[ChargeInput] = []
ATTEMPTS: list[object] = []


class CountedChargeInput(ChargeInput):
    """ChargeInput, counting how often the SDK builds it: once per attempt of the activity."""

    @classmethod
    def model_validate(cls, data):
        ATTEMPTS.append(data)
        return super().model_validate(data)


def charge(ctx: wf.WorkflowActivityContext, request: CountedChargeInput) -> dict:
    RAN.append(request)
    return {"ok": True}


def call_charge(ctx: wf.DaprWorkflowContext, payload: dict):
    policy = wf.RetryPolicy(first_retry_interval=timedelta(milliseconds=50), max_number_of_attempts=4)
    return (yield ctx.call_activity(charge, input=payload, retry_policy=policy))


@pytest.fixture
def sidecar_port(tmp_path: Path):
    with sidecar_serving(["contracts"], tmp_path / "state.db") as ports:
        yield ports["contracts"][0]


def test_a_payload_of_the_wrong_types_fails_the_activity_once_naming_each_field(sidecar_port: int):
    runtime = wf.WorkflowRuntime(host="127.0.0.1", port=str(sidecar_port))
    runtime.register_workflow(call_charge)
    runtime.register_activity(charge)
    runtime.start()
    client = wf.DaprWorkflowClient(host="127.0.0.1", port=str(sidecar_port))
    try:
        bad = {"order_id": "o-1", "customer_id": "c-1", "amount_cents": "12", "token": [], "idempotency_key": "k"}
        instance = client.schedule_new_workflow(call_charge, input=bad)
        state = client.wait_for_workflow_completion(instance, timeout_in_seconds=60)
    finally:
        client.close()
        runtime.shutdown()
    assert state is not None and state.runtime_status == wf.WorkflowStatus.FAILED, state
    message = state.failure_details.message
    assert "ChargeInput.amount_cents: expected int, got str '12'" in message
    assert "ChargeInput.token: expected str, got list []" in message
    assert "ChargeInput does not fit its contract" in message
    assert RAN == []  # the body never ran
    assert len(ATTEMPTS) == 1  # one attempt of the four the policy allows: a payload that cannot change
