"""Workflow versioning: an instance whose history recorded a patch (``ctx.is_patched``) and then meets code
without that patch check stalls, as daprd 1.18 stalls it, instead of carrying on down the other path."""

from __future__ import annotations

import json
import time

import grpc
import pytest
from dapr.ext.workflow import WorkflowStatus

from engine_harness import WAIT, eventually, unique


def test_an_instance_that_recorded_a_patch_stalls_on_code_without_the_patch_check(make_cluster):
    cluster = make_cluster(["alpha"])
    patched_worker, = cluster.start_workers(("alpha", "a1"))
    client = cluster.client("alpha")
    instance_id = client.schedule_new_workflow("patched", instance_id=unique("patched"))
    assert client.wait_for_workflow_start(instance_id, timeout_in_seconds=WAIT).runtime_status == WorkflowStatus.RUNNING

    # A redeployment whose code lost the patch check: the history says "p", the turn reports no patch.
    patched_worker.kill()
    unpatched_worker, = cluster.start_workers(("alpha", "a2"), flags=("--unpatched",))
    client.raise_workflow_event(instance_id, "go", data="after the redeploy")
    state = eventually(lambda: (s := client.get_workflow_state(instance_id)) and s.runtime_status == WorkflowStatus.STALLED and s,
                       what="the instance to stall")
    assert (state.serialized_output, state.failure_details) == (None, None)
    with pytest.raises(grpc.RpcError) as refused:
        client.raise_workflow_event(instance_id, "go", data="while stalled")
    assert refused.value.code() == grpc.StatusCode.UNKNOWN
    assert refused.value.details() == f"failed to invoke method for workflow '{instance_id}': actor is stalled"

    # The code with the patch check comes back.
    unpatched_worker.kill()
    cluster.start_workers(("alpha", "a3"))
    if cluster.engine.name == "sidecar":
        # The sidecar tries a stalled instance again when a worker of its app connects.
        state = client.wait_for_workflow_completion(instance_id, timeout_in_seconds=WAIT)
    else:
        # daprd holds a stalled workflow actor until the actor ends: a new worker does not wake it ...
        time.sleep(2)
        assert client.get_workflow_state(instance_id).runtime_status == WorkflowStatus.STALLED
        # ... a restart of daprd does.
        cluster.engine.kill()
        cluster.engine.start()
        state = client.wait_for_workflow_completion(instance_id, timeout_in_seconds=WAIT)
    assert state.runtime_status == WorkflowStatus.COMPLETED
    assert json.loads(state.serialized_output) == {"path": "new", "got": "after the redeploy"}
