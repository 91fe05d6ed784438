"""Workflow versioning: an instance whose history recorded a patch (``ctx.is_patched``) and then meets code
without that patch check stalls, as daprd 1.18 stalls it, instead of carrying on down the other path; so
does an instance whose workflow version the connected worker lacks."""

from __future__ import annotations

import json
import time

import grpc
import pytest
from dapr.ext.workflow import WorkflowStatus
from dapr.ext.workflow._durabletask.internal import orchestrator_service_pb2_grpc as stubs
from dapr.ext.workflow._durabletask.internal import protos as pb

from tests.support.engine_harness import WAIT, eventually, unique


def test_an_instance_that_recorded_a_patch_stalls_on_code_without_the_patch_check(make_cluster):
    cluster = make_cluster(["alpha"])
    (patched_worker,) = cluster.start_workers(("alpha", "a1"))
    client = cluster.client("alpha")
    instance_id = client.schedule_new_workflow("patched", instance_id=unique("patched"))
    assert client.wait_for_workflow_start(instance_id, timeout_in_seconds=WAIT).runtime_status == WorkflowStatus.RUNNING

    # A redeployment whose code lost the patch check: the history says "p", the turn reports no patch.
    patched_worker.kill()
    (unpatched_worker,) = cluster.start_workers(("alpha", "a2"), flags=("--unpatched",))
    client.raise_workflow_event(instance_id, "go", data="after the redeploy")
    state = eventually(
        lambda: (s := client.get_workflow_state(instance_id)) and s.runtime_status == WorkflowStatus.STALLED and s,
        what="the instance to stall",
    )
    assert (state.serialized_output, state.failure_details) == (None, None)
    # The history shows the patch the first turn recorded and the stall; nothing of the stalled turn.
    with grpc.insecure_channel(f"127.0.0.1:{cluster.engine.grpc_port('alpha')}") as channel:
        events = (
            stubs.TaskHubSidecarServiceStub(channel)
            .GetInstanceHistory(pb.GetInstanceHistoryRequest(instanceId=instance_id))
            .events
        )
    assert [e.WhichOneof("eventType") for e in events] == [
        "workflowStarted",
        "executionStarted",
        "timerCreated",
        "executionStalled",
    ]
    assert list(events[0].workflowStarted.version.patches) == ["p"]
    assert events[-1].executionStalled.reason == pb.PATCH_MISMATCH
    assert events[-1].executionStalled.description == "Patch mismatch. History patches: [p], current patches: []. "
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
        # daprd holds a stalled workflow actor until the actor ends. A new worker wakes it only if the actor was
        # deactivated meanwhile (daprd drops its workflow actors when no worker stream is open, as between the kill
        # and the new worker: timing decides); otherwise a restart of daprd does.
        time.sleep(2)
        if client.get_workflow_state(instance_id).runtime_status == WorkflowStatus.STALLED:
            cluster.engine.kill()
            cluster.engine.start()
        state = client.wait_for_workflow_completion(instance_id, timeout_in_seconds=WAIT)
    assert state.runtime_status == WorkflowStatus.COMPLETED
    assert json.loads(state.serialized_output) == {"path": "new", "got": "after the redeploy"}


def history_of(cluster, instance_id: str):
    with grpc.insecure_channel(f"127.0.0.1:{cluster.engine.grpc_port('alpha')}") as channel:
        return (
            stubs.TaskHubSidecarServiceStub(channel)
            .GetInstanceHistory(pb.GetInstanceHistoryRequest(instanceId=instance_id))
            .events
        )


def test_an_instance_whose_version_the_worker_lacks_stalls_until_a_worker_has_it(make_cluster):
    cluster = make_cluster(["alpha"])
    (v1_worker,) = cluster.start_workers(("alpha", "a1"), flags=("--versions", "v1"))
    client = cluster.client("alpha")
    instance_id = client.schedule_new_workflow("versioned", instance_id=unique("versioned"))
    assert client.wait_for_workflow_start(instance_id, timeout_in_seconds=WAIT).runtime_status == WorkflowStatus.RUNNING

    v1_worker.kill()
    (v2_worker,) = cluster.start_workers(("alpha", "a2"), flags=("--versions", "v2"))
    client.raise_workflow_event(instance_id, "go", data="later")
    eventually(
        lambda: (s := client.get_workflow_state(instance_id)) and s.runtime_status == WorkflowStatus.STALLED,
        what="the instance to stall",
    )
    events = history_of(cluster, instance_id)
    assert events[0].workflowStarted.version.name == "v1"
    assert events[-1].executionStalled.reason == pb.VERSION_NOT_AVAILABLE
    assert events[-1].executionStalled.description == "Version not available: v1"

    v2_worker.kill()
    cluster.start_workers(("alpha", "a3"), flags=("--versions", "v1,v2"))
    if cluster.engine.name == "dapr":
        cluster.engine.kill()  # daprd wakes a stalled workflow actor only when it starts again
        cluster.engine.start()
    state = client.wait_for_workflow_completion(instance_id, timeout_in_seconds=WAIT)
    assert state.runtime_status == WorkflowStatus.COMPLETED
    assert json.loads(state.serialized_output) == {"version": "v1", "got": "later"}
