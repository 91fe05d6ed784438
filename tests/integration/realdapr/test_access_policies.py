"""What self-hosted daprd 1.18 does with a ``WorkflowAccessPolicy`` (the kind in ``components/access-policies/``),
with and without mTLS.

Apps under ``python -m realdapr run``: ``caller`` and ``intruder`` each run a workflow that calls the ``ping``
activity on ``callee``, whose policy allows ``caller`` and ``ping`` only. With mTLS (what ``make run-dapr`` runs)
the caller gets through and the intruder is denied: the callee's daprd logs it at warning level and counts it in
``dapr_runtime_workflow_acl_action_denied_total``, the intruder's daprd logs the PermissionDenied, and the intruder's
workflow fails (as tampered: with history signing on, daprd 1.18.2 rejects its own unattested denial event).
Without mTLS (what the Dapr CLI runs: ``--no-mtls``) the callee's daprd cannot tell who calls, so the policy denies
the allowed caller too (``WorkflowAccessPolicyDenied``), silently on the callee's side: why ``dapr.yaml`` does not
load the policies.
"""

from __future__ import annotations

import os
import time
from pathlib import Path

import httpx
import pytest
from dapr.conf import settings as dapr_settings
from dapr.ext.workflow import DaprWorkflowClient, WorkflowState, WorkflowStatus

from devtools.ports import free_port
from devtools.processes import stop_runner
from tests.support.dapr_runs import daprd_flag, needs_dapr, run_template, start_run, wait_for

pytestmark = needs_dapr

APP = """\
import sys, time
from dapr.ext.workflow import WorkflowRuntime

def call_other(ctx, _):
    return (yield ctx.call_activity("ping", input="hi", app_id="callee"))

def ping(ctx, text):
    return f"pong {text}"

runtime = WorkflowRuntime()
if sys.argv[1] == "callee":
    runtime.register_activity(ping, name="ping")
else:
    runtime.register_workflow(call_other, name="call_other")
runtime.start()
time.sleep(600)
"""

POLICY = """\
apiVersion: dapr.io/v1alpha1
kind: WorkflowAccessPolicy
metadata:
  name: callee-wf-acl
scopes:
  - callee
spec:
  rules:
    - callers:
        - appID: caller
      activities:
        - name: ping
"""
TOKEN = "acl-test-token"


def _template(folder: Path, with_policy: bool) -> tuple[Path, dict[str, int]]:
    grpc = {app: free_port() for app in ("caller", "intruder", "callee")}
    apps = "".join(
        f"- appID: {app}\n"
        "  appDirPath: .\n"
        f"  daprGRPCPort: {port}\n"
        f"  daprHTTPPort: {free_port()}\n"
        f'  command: ["python", "app.py", "{app}"]\n'
        for app, port in grpc.items()
    )
    template = run_template(folder, apps)
    (folder / "app.py").write_text(APP)
    if with_policy:
        (folder / "policies").mkdir()
        (folder / "policies" / "callee.yaml").write_text(POLICY)
    return template, grpc


def _call_other(grpc_port: int) -> WorkflowState:
    client = DaprWorkflowClient(host="127.0.0.1", port=str(grpc_port))
    deadline = time.monotonic() + 60
    while True:  # the workers connect a moment after daprd is healthy
        try:
            instance = client.schedule_new_workflow("call_other", input=None)
            break
        except Exception:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.5)
    state = client.wait_for_workflow_completion(instance, timeout_in_seconds=60)
    client.close()
    assert state is not None
    return state


def _start(tmp_path: Path, pg_server_url: str, with_policy: bool, *extra: str):
    template, grpc = _template(tmp_path / "t", with_policy)
    policies = ("--policies", str(tmp_path / "t" / "policies")) if with_policy else ()
    # The run's daprd require this token (realdapr makes one per run otherwise); the SDK client here sends it.
    proc, log = start_run(
        template, tmp_path, pg_server_url, *policies, *extra, env={**os.environ, "DAPR_API_TOKEN": TOKEN}
    )
    return proc, log, grpc


@pytest.mark.parametrize("with_policy", [False, True], ids=["no-policy", "policy-loaded"])
def test_without_mtls_a_loaded_access_policy_denies_even_the_caller_it_allows(
    tmp_path: Path, pg_server_url: str, with_policy: bool, monkeypatch: pytest.MonkeyPatch
):
    monkeypatch.setattr(dapr_settings, "DAPR_API_TOKEN", TOKEN)
    # --no-mtls drops the policies (they would deny everyone): they are loaded here on purpose, as a file
    # among the template's components, which is what adding them to dapr.yaml's resourcesPaths would do.
    template, grpc = _template(tmp_path / "t", False)
    if with_policy:
        (tmp_path / "t" / "components" / "callee-policy.yaml").write_text(POLICY)
    proc, log = start_run(template, tmp_path, pg_server_url, "--no-mtls", env={**os.environ, "DAPR_API_TOKEN": TOKEN})
    try:
        wait_for(log, "all 3 daprd sidecars are up", proc)
        state = _call_other(grpc["caller"])
        if with_policy:
            assert state.runtime_status == WorkflowStatus.FAILED, state
            assert state.failure_details is not None
            # The SDK raised the activity's failure into the workflow, which did not catch it.
            assert state.failure_details.error_type == "TaskFailedError"
            assert "access denied by workflow access policy" in state.failure_details.message
            log.seek(0)
            assert "workflow access policy denied" not in log.read()  # nothing on the callee's side
        else:
            assert state.runtime_status == WorkflowStatus.COMPLETED, state
            assert state.serialized_output == '"pong hi"'
    finally:
        stop_runner(proc)


def test_with_mtls_the_allowed_caller_gets_through_and_an_app_outside_the_policy_is_denied_visibly(
    tmp_path: Path, pg_server_url: str, monkeypatch: pytest.MonkeyPatch
):
    monkeypatch.setattr(dapr_settings, "DAPR_API_TOKEN", TOKEN)
    proc, log, grpc = _start(tmp_path, pg_server_url, True)
    try:
        text = wait_for(log, "all 3 daprd sidecars are up", proc)
        metrics = f"http://127.0.0.1:{daprd_flag(text, 'callee', '--metrics-port')}/metrics"

        allowed = _call_other(grpc["caller"])
        assert allowed.runtime_status == WorkflowStatus.COMPLETED, allowed
        assert allowed.serialized_output == '"pong hi"'

        denied = _call_other(grpc["intruder"])
        assert denied.runtime_status == WorkflowStatus.FAILED, denied
        assert denied.failure_details is not None
        # daprd 1.18.2 turns the denial into a TaskFailed (WorkflowAccessPolicyDenied) made by the caller's own
        # daprd, with no attestation; with history signing on, its verifier rejects that event and tombstones
        # the workflow as tampered (orchestrator/activity.go failActivityACL, signing/verify.go runVerify).
        assert denied.failure_details.error_type == "DAPR_WORKFLOW_HISTORY_TAMPERED"
        assert denied.failure_details.message == "activity failure missing required attestation for task 1"

        text = wait_for(log, "workflow access policy denied app 'intruder' on activity 'ping'", proc)
        warning = next(line for line in text.splitlines() if "denied app 'intruder'" in line)
        assert warning.startswith("[callee daprd]") and "level=warning" in warning
        caller_side = next(line for line in text.splitlines() if "activity 'ping' denied by" in line)
        assert caller_side.startswith("[intruder daprd]") and "code = PermissionDenied" in caller_side
        counted = [line for line in httpx.get(metrics, timeout=10).text.splitlines() if "workflow_acl_action" in line]
        assert any(
            line.startswith("dapr_runtime_workflow_acl_action_denied_total")
            and 'src_app_id="intruder"' in line
            and line.endswith(" 1")
            for line in counted
        ), counted
        assert any(
            line.startswith("dapr_runtime_workflow_acl_action_allowed_total") and 'src_app_id="caller"' in line
            for line in counted
        ), counted
    finally:
        stop_runner(proc)
