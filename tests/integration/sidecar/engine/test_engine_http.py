"""Dapr's HTTP workflow API on an app's HTTP port: health, start, get, raiseEvent, pause, resume,
terminate and purge, run against the same engine the SDK workers serve.

daprd (and the sidecar, as daprd) answers start, pause, resume and terminate with 202 before the change has
taken effect, so the tests wait for each status rather than read it once."""

from __future__ import annotations

import json

import httpx
import pytest
from dapr.ext.workflow import WorkflowStatus

from tests.support.engine_harness import WAIT, Cluster, eventually, unique


@pytest.fixture
def http(shared: Cluster):
    with httpx.Client(base_url=f"http://127.0.0.1:{shared.engine.http_port('alpha')}/v1.0", timeout=10) as client:
        yield client


def runtime_status(http: httpx.Client, instance_id: str) -> str | None:
    return http.get(f"/workflows/dapr/{instance_id}").json().get("runtimeStatus")


def reaches(http: httpx.Client, instance_id: str, status: str) -> bool:
    return eventually(lambda: runtime_status(http, instance_id) == status, what=f"{status} over HTTP")


def test_the_health_endpoint_answers_204(http: httpx.Client):
    response = http.get("/healthz")
    assert response.status_code == 204
    assert response.content == b""


def test_a_workflow_started_over_http_can_be_paused_resumed_fed_an_event_and_purged(
    http: httpx.Client, shared: Cluster
):
    instance_id = unique("http")
    started = http.post(f"/workflows/dapr/wait_event/start?instanceID={instance_id}", content=json.dumps({"order": 7}))
    assert started.status_code == 202
    assert started.json() == {"instanceID": instance_id}
    assert reaches(http, instance_id, "RUNNING")
    body = http.get(f"/workflows/dapr/{instance_id}").json()
    assert body["workflowName"] == "wait_event"
    assert body["properties"]["dapr.workflow.input"] == '{"order": 7}'
    assert body["properties"]["dapr.workflow.custom_status"] == "waiting"

    assert http.post(f"/workflows/dapr/{instance_id}/pause").status_code == 202
    assert reaches(http, instance_id, "SUSPENDED")
    assert http.post(f"/workflows/dapr/{instance_id}/resume").status_code == 202
    assert reaches(http, instance_id, "RUNNING")

    assert http.post(f"/workflows/dapr/{instance_id}/raiseEvent/go", content='"hello"').status_code == 202
    assert reaches(http, instance_id, "COMPLETED")
    done = http.get(f"/workflows/dapr/{instance_id}").json()
    assert json.loads(done["properties"]["dapr.workflow.output"]) == {"got": "hello"}
    # The SDK client of the same app sees the same instance.
    assert (
        shared.client("alpha").get_workflow_state(instance_id).serialized_output
        == done["properties"]["dapr.workflow.output"]
    )

    assert http.post(f"/workflows/dapr/{instance_id}/purge").status_code == 202
    assert http.get(f"/workflows/dapr/{instance_id}").status_code == 404
    assert shared.client("alpha").get_workflow_state(instance_id) is None


def test_a_workflow_terminated_over_http_is_terminated(http: httpx.Client):
    instance_id = unique("http-term")
    assert http.post(f"/workflows/dapr/wait_event/start?instanceID={instance_id}").status_code == 202
    assert reaches(http, instance_id, "RUNNING")
    assert http.post(f"/workflows/dapr/{instance_id}/terminate").status_code == 202
    assert reaches(http, instance_id, "TERMINATED")


def test_http_calls_on_an_unknown_instance_fail_with_no_such_instance(http: httpx.Client):
    response = http.get("/workflows/dapr/unknown-instance")
    assert response.status_code == 404
    assert response.json() == {
        "errorCode": "ERR_INSTANCE_ID_NOT_FOUND",
        "message": "unable to find workflow with the provided instance ID: unknown-instance",
    }
    raised = http.post("/workflows/dapr/unknown-instance/raiseEvent/go", content="1")
    assert raised.status_code == 500  # daprd answers ERR_RAISE_EVENT_WORKFLOW with 500
    assert raised.json() == {
        "errorCode": "ERR_RAISE_EVENT_WORKFLOW",
        "message": (
            "error raising event on workflow 'unknown-instance': failed to raise event go on workflow "
            "unknown-instance: failed to raise event: no such instance exists"
        ),
    }
    paused = http.post("/workflows/dapr/unknown-instance/pause")
    assert (paused.status_code, paused.json()) == (
        500,
        {
            "errorCode": "ERR_PAUSE_WORKFLOW",
            "message": (
                "error pausing workflow unknown-instance: failed to pause workflow unknown-instance: failed to suspend "
                "workflow: no such instance exists"
            ),
        },
    )
    # daprd 1.18 formats these two messages with a stray argument; the sidecar copies Go's rendering of it.
    for action, cause in [
        ("terminate", "failed to submit termination request:: no such instance exists"),
        ("purge", "failed to purge workflow state: failed to fetch workflow state: no such instance exists"),
    ]:
        response = http.post(f"/workflows/dapr/unknown-instance/{action}")
        assert (response.status_code, response.json()) == (
            404,
            {
                "errorCode": "ERR_INSTANCE_ID_NOT_FOUND",
                "message": (
                    "unable to find workflow with the provided instance ID: unknown-instance"
                    f"%!(EXTRA *fmt.wrapError={cause})"
                ),
            },
        )


def test_purging_a_running_instance_over_http_is_refused(http: httpx.Client):
    instance_id = unique("http-running")
    assert http.post(f"/workflows/dapr/wait_event/start?instanceID={instance_id}").status_code == 202
    assert reaches(http, instance_id, "RUNNING")
    refused = http.post(f"/workflows/dapr/{instance_id}/purge")
    assert (refused.status_code, refused.json()) == (
        500,
        {
            "errorCode": "ERR_PURGE_WORKFLOW",
            "message": (
                f"error purging workflow {instance_id}: failed to Purge workflow {instance_id}: failed to purge "
                "workflow state: orchestration has not yet completed"
            ),
        },
    )
    assert runtime_status(http, instance_id) == "RUNNING"
    http.post(f"/workflows/dapr/{instance_id}/terminate")


def test_starting_a_running_instance_over_http_is_refused(http: httpx.Client):
    instance_id = unique("http-dup")
    assert http.post(f"/workflows/dapr/wait_event/start?instanceID={instance_id}").status_code == 202
    assert reaches(http, instance_id, "RUNNING")
    again = http.post(f"/workflows/dapr/wait_event/start?instanceID={instance_id}")
    assert again.status_code == 500  # not 409: daprd 1.18 answers every failed start with 500
    assert again.json() == {
        "errorCode": "ERR_START_WORKFLOW",
        "message": (
            f"error starting workflow 'wait_event': unable to start workflow: failed to start workflow: rpc error: "
            f"code = AlreadyExists desc = an active workflow with ID '{instance_id}' already exists"
        ),
    }
    http.post(f"/workflows/dapr/{instance_id}/terminate")


def test_http_terminate_and_purge_reach_the_child_on_another_app(http: httpx.Client, shared: Cluster):
    instance_id = unique("http-parent")
    started = http.post(
        f"/workflows/dapr/parent_of_waiter/start?instanceID={instance_id}", content=json.dumps({"apps": ["beta"]})
    )
    assert started.status_code == 202
    child = f"{instance_id}-child"
    beta = shared.client("beta")
    eventually(
        lambda: (s := beta.get_workflow_state(child)) and s.runtime_status == WorkflowStatus.RUNNING,
        what="the child on beta",
    )
    assert http.post(f"/workflows/dapr/{instance_id}/terminate").status_code == 202
    assert beta.wait_for_workflow_completion(child, timeout_in_seconds=WAIT).runtime_status == WorkflowStatus.TERMINATED
    assert reaches(http, instance_id, "TERMINATED")
    assert http.post(f"/workflows/dapr/{instance_id}/purge").status_code == 202
    assert http.get(f"/workflows/dapr/{instance_id}").status_code == 404
    assert eventually(lambda: beta.get_workflow_state(child) is None, what="the child purged")
