"""GetInstanceHistory and ListInstanceIDs, the two query RPCs daprd 1.18 serves and the SDK 1.18.3 client
does not call: asked through the SDK's own generated gRPC stub, on the app's port."""

from __future__ import annotations

import grpc
import pytest
from dapr.ext.workflow._durabletask.internal import orchestrator_service_pb2_grpc as stubs
from dapr.ext.workflow._durabletask.internal import protos as pb

from tests.support.engine_harness import WAIT, Cluster, completes, unique


@pytest.fixture
def stub(shared: Cluster):
    with grpc.insecure_channel(f"127.0.0.1:{shared.engine.grpc_port('alpha')}") as channel:
        yield stubs.TaskHubSidecarServiceStub(channel)


def history(stub, instance_id: str) -> list[tuple]:
    """(eventId, kind, router source app, router target app) of each event."""
    events = stub.GetInstanceHistory(pb.GetInstanceHistoryRequest(instanceId=instance_id)).events
    return [
        (
            e.eventId,
            e.WhichOneof("eventType"),
            e.router.sourceAppID if e.HasField("router") else None,
            e.router.targetAppID if e.HasField("router") and e.router.HasField("targetAppID") else None,
        )
        for e in events
    ]


def test_the_history_of_a_cross_app_activity_call_names_the_apps_as_daprd_records_them(shared: Cluster, stub):
    client = shared.client("alpha")
    instance_id = client.schedule_new_workflow(
        "call_on", input={"app": "beta", "name": "whoami", "input": "h"}, instance_id=unique("history")
    )
    assert completes(client, instance_id)
    assert history(stub, instance_id) == [
        (-1, "workflowStarted", None, None),
        (-1, "executionStarted", "alpha", None),
        (1, "taskScheduled", "alpha", "beta"),
        (-1, "workflowStarted", None, None),
        (-1, "taskCompleted", "alpha", "beta"),
        (2, "executionCompleted", "alpha", None),
    ]


def test_the_history_keeps_each_turn_with_suspension_resumption_timer_and_event(shared: Cluster, stub):
    client = shared.client("alpha")
    instance_id = client.schedule_new_workflow("wait_event", instance_id=unique("history"))
    client.pause_workflow(instance_id)
    client.resume_workflow(instance_id)
    client.raise_workflow_event(instance_id, "go", data=1)
    assert completes(client, instance_id)
    assert history(stub, instance_id) == [
        (-1, "workflowStarted", None, None),
        (-1, "executionStarted", "alpha", None),
        (1, "timerCreated", "alpha", None),  # the SDK's never-firing timer of an indefinite wait
        (-1, "workflowStarted", None, None),
        (-1, "executionSuspended", None, None),
        (-1, "workflowStarted", None, None),
        (-1, "executionResumed", None, None),
        (-1, "workflowStarted", None, None),
        (-1, "eventRaised", None, None),
        (2, "executionCompleted", "alpha", None),
    ]


def test_the_history_of_an_unknown_instance_is_not_found(stub):
    with pytest.raises(grpc.RpcError) as refused:
        stub.GetInstanceHistory(pb.GetInstanceHistoryRequest(instanceId="unknown-instance"))
    assert refused.value.code() == grpc.StatusCode.NOT_FOUND
    assert refused.value.details() == "workflow instance 'unknown-instance' not found"


def list_all(stub, page_size: int) -> list[str]:
    ids, token = [], None
    while True:
        request = pb.ListInstanceIDsRequest(pageSize=page_size)
        if token is not None:
            request.continuationToken = token
        page = stub.ListInstanceIDs(request)
        assert len(page.instanceIds) <= page_size
        ids += page.instanceIds
        if not page.HasField("continuationToken"):
            return ids
        assert len(page.instanceIds) == page_size  # a token only when a full page may have more after it
        token = page.continuationToken


def test_instance_ids_are_listed_per_app_in_creation_order_a_page_at_a_time(shared: Cluster, stub):
    client = shared.client("alpha")
    mine = [unique("listed") for _ in range(3)]
    for instance_id in mine:
        client.schedule_new_workflow("clock", instance_id=instance_id)
    for instance_id in mine:
        client.wait_for_workflow_completion(instance_id, timeout_in_seconds=WAIT)
    everything = stub.ListInstanceIDs(pb.ListInstanceIDsRequest())
    assert not everything.HasField("continuationToken")
    listed = list(everything.instanceIds)
    assert [i for i in listed if i in mine] == mine
    assert list_all(stub, 2) == listed
    # Only this app's instances: beta lists none of them.
    with grpc.insecure_channel(f"127.0.0.1:{shared.engine.grpc_port('beta')}") as channel:
        beta = stubs.TaskHubSidecarServiceStub(channel).ListInstanceIDs(pb.ListInstanceIDsRequest()).instanceIds
    assert not set(beta) & set(mine)
    # A purged instance leaves the list; reusing a finished instance's ID keeps its place.
    client.purge_workflow(mine[0])
    client.schedule_new_workflow("clock", instance_id=mine[1])
    client.wait_for_workflow_completion(mine[1], timeout_in_seconds=WAIT)
    listed = list(stub.ListInstanceIDs(pb.ListInstanceIDsRequest()).instanceIds)
    assert [i for i in listed if i in mine] == mine[1:]


def test_a_continuation_token_that_is_not_a_number_is_refused(stub):
    with pytest.raises(grpc.RpcError) as refused:
        stub.ListInstanceIDs(pb.ListInstanceIDsRequest(continuationToken="abc"))
    assert refused.value.code() == grpc.StatusCode.UNKNOWN
    assert refused.value.details() == 'invalid continue token: strconv.ParseInt: parsing "abc": invalid syntax'


def test_after_a_continue_as_new_the_history_is_the_last_generations_alone(shared: Cluster, stub):
    client = shared.client("alpha")
    instance_id = client.schedule_new_workflow(
        "counter", input={"n": 0, "target": 2, "runs": []}, instance_id=unique("history")
    )
    assert completes(client, instance_id)
    assert history(stub, instance_id) == [
        (-1, "workflowStarted", "alpha", None),  # daprd runs a new generation in the work item that continued
        (-1, "executionStarted", "alpha", None),
        (1, "executionCompleted", "alpha", None),
    ]
