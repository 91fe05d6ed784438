"""End-to-end, on both engines: an app outside every access policy (``intruder``, its own app ID, started beside
the shop: tests/support/intruder_app.py) schedules ``charge`` on payment, or ``release_inventory`` on inventory, as
the saga would. It is denied, the activity never runs, and the denial is visible to an operator; every saga path
of the other end-to-end tests shows that the allowed caller, the order-api, gets through.

On the sidecar the intruder's workflow gets daprd's failure, ``WorkflowAccessPolicyDenied``, and the sidecar logs
the denial (ERROR). On real daprd (mTLS, the policies loaded, history signing on: make run-dapr), the callee's daprd
logs it (warning) and counts it (``dapr_runtime_workflow_acl_action_denied_total``); the intruder's workflow fails
as tampered, since daprd 1.18.2 rejects the unattested failure event it makes for a denial when history is signed.
"""

from __future__ import annotations

import re
import time

import httpx
import pytest
from dapr.conf import settings as dapr_settings
from dapr.ext.workflow import DaprWorkflowClient, WorkflowStatus

from tests.support.orders import new_id


@pytest.mark.parametrize(("app", "activity"), [("payment", "charge"), ("inventory", "release_inventory")])
def test_an_app_outside_the_policy_is_denied_and_the_activity_never_runs(
    system, app: str, activity: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(dapr_settings, "DAPR_API_TOKEN", system.api_token)
    order_id = new_id("intruder")
    client = DaprWorkflowClient(host="127.0.0.1", port=str(system.intruder_grpc))
    target = {"app": app, "activity": activity, "order_id": order_id}
    deadline = time.monotonic() + 90
    while True:  # the intruder's worker connects in its own time: nothing waits for it
        try:
            instance = client.schedule_new_workflow("intrude", input=target, instance_id=order_id)
            state = client.wait_for_workflow_completion(instance, timeout_in_seconds=60)
            break
        except Exception:
            if time.monotonic() > deadline:
                raise
            time.sleep(1)
    client.close()
    assert state is not None
    log = system.log_path.read_text(errors="replace")
    if system.engine == "sidecar":
        assert state.runtime_status == WorkflowStatus.COMPLETED, state
        assert state.serialized_output is not None and '"error_type": "WorkflowAccessPolicyDenied"' in (
            state.serialized_output
        )
        denial = f"app 'intruder' may not schedule activity '{activity}' on app '{app}'"
        assert any(denial in line and " ERROR " in line for line in log.splitlines()), denial
    else:
        assert state.runtime_status == WorkflowStatus.FAILED, state
        assert state.failure_details is not None
        assert state.failure_details.error_type == "DAPR_WORKFLOW_HISTORY_TAMPERED"
        warning = f"workflow access policy denied app 'intruder' on activity '{activity}'"
        assert any(line.startswith(f"[{app} daprd]") and warning in line for line in log.splitlines()), warning
        metrics_port = re.findall(rf"app {app} daprd started \(pid \d+\): .* --metrics-port (\d+)", log)[-1]
        counted = httpx.get(f"http://127.0.0.1:{metrics_port}/metrics", timeout=10).text
        assert re.search(
            r'dapr_runtime_workflow_acl_action_denied_total{[^}]*operation="schedule"[^}]*src_app_id="intruder"'
            r"[^}]*} [1-9]",
            counted,
        ), [line for line in counted.splitlines() if "acl" in line]
    # The activity never ran: nothing charged, no reservation touched.
    with system.client(app) as callee:
        path = f"/payments/{order_id}" if app == "payment" else f"/reservations/{order_id}"
        assert callee.get(path).status_code == 404
