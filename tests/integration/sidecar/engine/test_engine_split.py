"""One ``python -m sidecar serve`` process per app: sidecars do not call each other, so work one of them
routes to an app only the other serves fails at once, loudly (the caller's task failure and the log say
why), instead of waiting for ever. A test of the sidecar's own command line and log: sidecar only."""

from __future__ import annotations

import json

import pytest
from dapr.ext.workflow import DaprWorkflowClient, WorkflowStatus

from tests.support.engine_harness import WAIT, Sidecar, Worker, unique

pytestmark = pytest.mark.sidecar_only


@pytest.fixture
def split(tmp_path):
    """alpha on one sidecar process, beta on another, each with a worker; yields alpha's client and log."""
    sidecars = [Sidecar([app], tmp_path / f"{app}.db", tmp_path / f"{app}.log") for app in ("alpha", "beta")]
    workers = []
    client = None
    try:
        for sidecar in sidecars:
            sidecar.start()
        for sidecar, app in zip(sidecars, ("alpha", "beta"), strict=True):
            worker = Worker(app, f"{app[0]}1", sidecar.grpc_port(app), tmp_path)
            worker.launch()
            workers.append(worker)
        for worker in workers:
            worker.wait_ready()
        client = DaprWorkflowClient(host="127.0.0.1", port=str(sidecars[0].grpc_port("alpha")))
        yield client, sidecars[0].log
    finally:
        if client is not None:
            client.close()
        for process in [*workers, *sidecars]:
            process.kill()


MESSAGE = (
    "targets app 'beta', which this sidecar does not serve (it serves alpha); sidecars do not call each "
    "other: serve every app that calls another from one sidecar (python -m sidecar serve --app A=PORT --app B=PORT)"
)


@pytest.mark.parametrize("kind", ["child", "activity"])
def test_work_for_an_app_another_sidecar_process_serves_fails_at_once_and_says_why(split, kind: str):
    client, log = split
    instance_id = client.schedule_new_workflow(
        "call_on", input={"app": "beta", "kind": kind, "name": "whoami", "input": "split"}, instance_id=unique("split")
    )
    state = client.wait_for_workflow_completion(instance_id, timeout_in_seconds=WAIT)
    assert state.runtime_status == WorkflowStatus.FAILED
    assert state.failure_details.error_type == "TaskFailedError"
    what = f"child workflow 'whoami' ({instance_id}-child)" if kind == "child" else "activity 'whoami'"
    assert state.failure_details.message.endswith(f"{what} {MESSAGE}")
    assert f"ERROR app alpha: workflow {instance_id}: {what} {MESSAGE}" in log.read_text()


def test_the_caller_can_catch_the_failure_as_a_task_failure(split):
    client, _ = split
    instance_id = client.schedule_new_workflow(
        "call_on",
        input={"app": "beta", "kind": "child", "name": "whoami", "input": "split", "catch": True},
        instance_id=unique("split"),
    )
    state = client.wait_for_workflow_completion(instance_id, timeout_in_seconds=WAIT)
    assert state.runtime_status == WorkflowStatus.COMPLETED
    assert json.loads(state.serialized_output)["error_type"] == "AppNotServedError"
