"""``WorkflowAccessPolicy``: beta lets alpha schedule its ``whoami`` activity and its ``relay`` workflow, nothing
else, and nobody else. What another app asks of beta fails as daprd fails it (``WorkflowAccessPolicyDenied``,
``access denied by workflow access policy``), on both engines. On the sidecar the allowed caller gets through:
it knows which app's turn scheduled the work. daprd without mTLS (this harness runs no sentry) cannot tell who
calls and denies it too; ``make run-dapr`` and ``deploy/`` turn mTLS on, and with it the allowed caller gets
through (``tests/integration/realdapr/test_access_policies.py``)."""

from __future__ import annotations

import json

from dapr.ext.workflow import WorkflowStatus

from tests.support.engine_harness import WAIT, unique

POLICY = """\
apiVersion: dapr.io/v1alpha1
kind: WorkflowAccessPolicy
metadata:
  name: beta-wf-acl
scopes:
  - beta
spec:
  rules:
    - callers:
        - appID: alpha
      activities:
        - name: who*
      workflows:
        - name: relay
          operations: [schedule]
"""

DENIED = {"error_type": "WorkflowAccessPolicyDenied", "message": "access denied by workflow access policy"}


def call(cluster, app: str, payload: dict):
    client = cluster.client(app)
    instance_id = client.schedule_new_workflow("call_on", input={**payload, "catch": True}, instance_id=unique(app))
    state = client.wait_for_workflow_completion(instance_id, timeout_in_seconds=WAIT)
    assert state.runtime_status == WorkflowStatus.COMPLETED, state
    return json.loads(state.serialized_output)


def test_an_app_outside_the_policy_is_denied_what_the_policy_allows_another(make_cluster, engine: str):
    cluster = make_cluster(["alpha", "beta", "gamma"], policies=POLICY)
    cluster.start_workers(("alpha", "a1"), ("beta", "b1"), ("gamma", "g1"))
    # gamma is in no rule: denied on both engines, and the activity never runs.
    assert call(cluster, "gamma", {"app": "beta", "name": "whoami", "input": "g->b"}) == DENIED
    assert cluster.reports("whoami", "g->b") == []
    # alpha asking for what the rule does not list: denied too.
    assert call(cluster, "alpha", {"app": "beta", "name": "square", "input": 3}) == DENIED
    assert call(cluster, "alpha", {"app": "beta", "name": "call_on", "kind": "child", "input": {}}) == DENIED
    # Calls within an app are never checked, and apps without a policy take anything.
    assert call(cluster, "beta", {"app": "beta", "name": "square", "input": 4}) == 16
    assert call(cluster, "beta", {"app": "gamma", "name": "square", "input": 5}) == 25

    allowed = call(cluster, "alpha", {"app": "beta", "name": "whoami", "input": "a->b"})
    if engine == "sidecar":
        assert allowed["app"] == "beta"
    else:  # no mTLS: daprd cannot tell alpha from anyone
        assert allowed == DENIED
