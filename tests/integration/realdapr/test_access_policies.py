"""What self-hosted daprd 1.18 does with a ``WorkflowAccessPolicy`` (the kind in ``components/access-policies/``):
without mTLS the callee's daprd cannot tell who calls, so an allow-list that names the caller still denies it.

Two apps under ``python -m realdapr run``: ``caller`` runs a workflow that calls the ``ping`` activity on
``callee``. With no policy loaded the workflow completes; with the project's own kind of policy (callee allows
``caller`` and ``ping`` only) the activity fails with daprd's denial. This is why the policies stay out of the
folder `make run-dapr` loads, and why ``deploy/`` (mTLS on) loads them.
"""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest
from dapr.conf import settings as dapr_settings
from dapr.ext.workflow import DaprWorkflowClient, WorkflowStatus

from devtools.ports import free_port
from tests.support.dapr_runs import BUILT, needs_dapr, run_template, start_run, wait_for
from tests.support.processes import stop_runner

APP = """\
import sys, time
from dapr.ext.workflow import WorkflowRuntime

def call_other(ctx, _):
    return (yield ctx.call_activity("ping", input="hi", app_id="callee"))

def ping(ctx, text):
    return f"pong {text}"

runtime = WorkflowRuntime()
if sys.argv[1] == "caller":
    runtime.register_workflow(call_other, name="call_other")
else:
    runtime.register_activity(ping, name="ping")
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


def _template(folder: Path, with_policy: bool) -> tuple[Path, int]:
    caller_grpc = free_port()
    template = run_template(
        folder,
        f"""\
        - appID: caller
          appDirPath: .
          daprGRPCPort: {caller_grpc}
          daprHTTPPort: {free_port()}
          command: ["python", "app.py", "caller"]
        - appID: callee
          appDirPath: .
          daprGRPCPort: {free_port()}
          daprHTTPPort: {free_port()}
          command: ["python", "app.py", "callee"]
        """,
        {"callee-policy.yaml": POLICY} if with_policy else None,
    )
    (folder / "app.py").write_text(APP)
    return template, caller_grpc


@needs_dapr
@pytest.mark.parametrize("with_policy", [False, True], ids=["no-policy", "policy-loaded"])
def test_a_loaded_access_policy_denies_the_cross_app_call_it_allows_when_there_is_no_mtls(
    tmp_path: Path, pg_server_url: str, with_policy: bool, monkeypatch: pytest.MonkeyPatch
):
    assert BUILT is not None
    template, caller_grpc = _template(tmp_path / "t", with_policy)
    # The run's daprd requires this token (realdapr makes one per run otherwise); the SDK client here sends it.
    proc, log = start_run(template, tmp_path, pg_server_url, env={**os.environ, "DAPR_API_TOKEN": "acl-test-token"})
    monkeypatch.setattr(dapr_settings, "DAPR_API_TOKEN", "acl-test-token")
    try:
        wait_for(log, "all 2 daprd sidecars are up", proc)
        client = DaprWorkflowClient(host="127.0.0.1", port=str(caller_grpc))
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
        assert state is not None
        if with_policy:
            assert state.runtime_status == WorkflowStatus.FAILED, state
            assert "access denied by workflow access policy" in state.failure_details.message
        else:
            assert state.runtime_status == WorkflowStatus.COMPLETED, state
            assert state.serialized_output == '"pong hi"'
        client.close()
    finally:
        stop_runner(proc)
