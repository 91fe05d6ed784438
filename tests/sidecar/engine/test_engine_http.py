"""Dapr's HTTP workflow API on an app's HTTP port: health, start, get, raiseEvent, pause, resume,
terminate and purge, run against the same engine the SDK workers serve."""

from __future__ import annotations

import json

import httpx
import pytest

from engine_harness import Cluster, eventually, unique


@pytest.fixture
def http(shared: Cluster):
    with httpx.Client(base_url=f"http://127.0.0.1:{shared.sidecar.http_port('alpha')}/v1.0", timeout=10) as client:
        yield client


def runtime_status(http: httpx.Client, instance_id: str) -> str:
    return http.get(f"/workflows/dapr/{instance_id}").json()["runtimeStatus"]


def test_the_health_endpoint_answers_204(http: httpx.Client):
    response = http.get("/healthz")
    assert response.status_code == 204
    assert response.content == b""


def test_a_workflow_started_over_http_can_be_paused_resumed_fed_an_event_and_purged(http: httpx.Client, shared: Cluster):
    instance_id = unique("http")
    started = http.post(f"/workflows/dapr/wait_event/start?instanceID={instance_id}", content=json.dumps({"order": 7}))
    assert started.status_code == 202
    assert started.json() == {"instanceID": instance_id}
    eventually(lambda: runtime_status(http, instance_id) == "RUNNING", what="RUNNING over HTTP")
    body = http.get(f"/workflows/dapr/{instance_id}").json()
    assert body["workflowName"] == "wait_event"
    assert body["properties"]["dapr.workflow.input"] == '{"order": 7}'
    assert body["properties"]["dapr.workflow.custom_status"] == "waiting"

    assert http.post(f"/workflows/dapr/{instance_id}/pause").status_code == 202
    assert runtime_status(http, instance_id) == "SUSPENDED"
    assert http.post(f"/workflows/dapr/{instance_id}/resume").status_code == 202
    assert runtime_status(http, instance_id) == "RUNNING"

    assert http.post(f"/workflows/dapr/{instance_id}/raiseEvent/go", content='"hello"').status_code == 202
    eventually(lambda: runtime_status(http, instance_id) == "COMPLETED", what="COMPLETED over HTTP")
    done = http.get(f"/workflows/dapr/{instance_id}").json()
    assert json.loads(done["properties"]["dapr.workflow.output"]) == {"got": "hello"}
    # The SDK client of the same app sees the same instance.
    assert shared.client("alpha").get_workflow_state(instance_id).serialized_output == done["properties"]["dapr.workflow.output"]

    assert http.post(f"/workflows/dapr/{instance_id}/purge").status_code == 202
    assert http.get(f"/workflows/dapr/{instance_id}").status_code == 404
    assert shared.client("alpha").get_workflow_state(instance_id) is None


def test_a_workflow_terminated_over_http_is_terminated(http: httpx.Client):
    instance_id = unique("http-term")
    assert http.post(f"/workflows/dapr/wait_event/start?instanceID={instance_id}").status_code == 202
    eventually(lambda: runtime_status(http, instance_id) == "RUNNING", what="RUNNING over HTTP")
    assert http.post(f"/workflows/dapr/{instance_id}/terminate").status_code == 202
    assert runtime_status(http, instance_id) == "TERMINATED"


def test_http_calls_on_an_unknown_instance_fail_with_no_such_instance(http: httpx.Client):
    response = http.get("/workflows/dapr/unknown-instance")
    assert response.status_code == 404
    assert response.json()["message"] == "no such instance exists: unknown-instance"
    raised = http.post("/workflows/dapr/unknown-instance/raiseEvent/go", content="1")
    assert raised.status_code == 500  # daprd answers ERR_RAISE_EVENT_WORKFLOW with 500
    assert raised.json() == {"errorCode": "ERR_RAISE_EVENT_WORKFLOW", "message": "no such instance exists"}


def test_starting_a_running_instance_over_http_is_a_conflict(http: httpx.Client):
    instance_id = unique("http-dup")
    assert http.post(f"/workflows/dapr/wait_event/start?instanceID={instance_id}").status_code == 202
    again = http.post(f"/workflows/dapr/wait_event/start?instanceID={instance_id}")
    assert again.status_code == 409
    assert again.json() == {"errorCode": "ERR_START_WORKFLOW", "message": f"an active workflow with ID '{instance_id}' already exists"}
    http.post(f"/workflows/dapr/{instance_id}/terminate")
