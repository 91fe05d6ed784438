"""Cross-app routing through the engine serving several app IDs (one sidecar, or a daprd per app):
activities and child workflows in both directions, results back at the caller, per-app visibility, a late
app, unregistered names, an app nothing serves."""

from __future__ import annotations

import json
import time

from dapr.ext.workflow import WorkflowStatus

from tests.support.engine_harness import WAIT, Cluster, unique


def run(cluster: Cluster, app: str, workflow: str, payload, instance_id: str | None = None):
    client = cluster.client(app)
    instance_id = client.schedule_new_workflow(workflow, input=payload, instance_id=instance_id or unique(workflow))
    state = client.wait_for_workflow_completion(instance_id, timeout_in_seconds=WAIT)
    return instance_id, state


def output(state):
    return json.loads(state.serialized_output)


def test_an_activity_on_beta_called_from_alpha_returns_its_result_to_alpha(shared: Cluster):
    instance_id, state = run(shared, "alpha", "call_on", {"app": "beta", "name": "whoami", "input": "a->b"})
    assert state.runtime_status == WorkflowStatus.COMPLETED
    result = output(state)
    assert result["app"] == "beta" and result["caller"] == instance_id
    assert [r["app"] for r in shared.reports("whoami", "a->b")] == ["beta"]


def test_an_activity_on_alpha_called_from_beta_returns_its_result_to_beta(shared: Cluster):
    instance_id, state = run(shared, "beta", "call_on", {"app": "alpha", "name": "whoami", "input": "b->a"})
    assert state.runtime_status == WorkflowStatus.COMPLETED
    assert output(state) == {"app": "alpha", "worker": "a1", "caller": instance_id}


def test_a_child_workflow_runs_on_beta_for_alpha_and_on_alpha_for_beta(shared: Cluster):
    _, state = run(shared, "alpha", "relay", {"path": ["beta"], "activity_app": "beta"})
    assert output(state) == ["alpha", "beta", "activity@beta"]
    _, state = run(shared, "beta", "relay", {"path": ["alpha"], "activity_app": "alpha"})
    assert output(state) == ["beta", "alpha", "activity@alpha"]


def test_a_chain_across_three_apps_returns_its_result_hop_by_hop_to_the_root(shared: Cluster):
    root, state = run(shared, "alpha", "relay", {"path": ["beta", "gamma"], "activity_app": "alpha"})
    assert state.runtime_status == WorkflowStatus.COMPLETED
    assert output(state) == ["alpha", "beta", "gamma", "activity@alpha"]
    # Each hop's instance lives on its own app; the activity ran on alpha for gamma's instance.
    assert shared.reports("whoami", f"{root}>beta>gamma") == [
        {"worker": "a1", "app": "alpha", "activity": "whoami", "key": f"{root}>beta>gamma", "phase": "ran"}
    ]
    # On daprd a child's own status may still say RUNNING for a moment after its parent got the result.
    for app, instance_id in [("beta", f"{root}>beta"), ("gamma", f"{root}>beta>gamma")]:
        state = shared.client(app).wait_for_workflow_completion(instance_id, timeout_in_seconds=WAIT)
        assert state.runtime_status == WorkflowStatus.COMPLETED


def test_an_instance_is_visible_only_through_its_own_apps_port(shared: Cluster):
    root, state = run(shared, "alpha", "relay", {"path": ["beta"], "activity_app": "gamma"})
    assert state.runtime_status == WorkflowStatus.COMPLETED
    child = f"{root}>beta"
    assert shared.client("alpha").get_workflow_state(root).name == "relay"
    assert shared.client("beta").get_workflow_state(root) is None
    assert shared.client("gamma").get_workflow_state(root) is None
    # On daprd the child's own status can lag its parent's result (sidecar/README.md, "Known differences").
    assert (
        shared.client("beta").wait_for_workflow_completion(child, timeout_in_seconds=WAIT).runtime_status
        == WorkflowStatus.COMPLETED
    )
    assert shared.client("alpha").get_workflow_state(child) is None


def test_an_activity_for_an_app_without_workers_waits_running_until_that_app_connects(shared: Cluster):
    client = shared.client("alpha")
    instance_id = client.schedule_new_workflow(
        "call_on", input={"app": "delta", "name": "whoami", "input": "late"}, instance_id=unique("late")
    )
    time.sleep(1.5)
    state = client.get_workflow_state(instance_id)
    assert state.runtime_status == WorkflowStatus.RUNNING
    assert state.failure_details is None
    shared.start_workers(("delta", "d1"))
    state = client.wait_for_workflow_completion(instance_id, timeout_in_seconds=WAIT)
    assert state.runtime_status == WorkflowStatus.COMPLETED
    assert output(state) == {"app": "delta", "worker": "d1", "caller": instance_id}


def test_an_activity_the_target_app_lacks_is_an_ordinary_task_failure_the_workflow_can_catch(shared: Cluster):
    _, state = run(shared, "alpha", "call_on", {"app": "gamma", "name": "square", "input": 3, "catch": True})
    assert state.runtime_status == WorkflowStatus.COMPLETED
    assert output(state) == {
        "error_type": "ActivityNotRegisteredError",
        "message": "Activity function named 'square' was not registered!",
    }
    # The same name is registered on beta, so it is the target's registry that decided.
    _, state = run(shared, "alpha", "call_on", {"app": "beta", "name": "square", "input": 3, "catch": True})
    assert output(state) == 9


def test_an_uncaught_missing_activity_fails_the_workflow_with_the_targets_error(shared: Cluster):
    instance_id, state = run(shared, "beta", "call_on", {"app": "gamma", "name": "square", "input": 3})
    assert state.runtime_status == WorkflowStatus.FAILED
    assert state.failure_details.error_type == "TaskFailedError"
    assert state.failure_details.message == (
        f"{instance_id}: Activity task #1 failed: Activity function named 'square' was not registered!"
    )


def test_a_child_workflow_the_target_app_lacks_fails_the_child_and_reaches_the_parent_as_a_task_failure(
    shared: Cluster,
):
    parent, state = run(
        shared, "alpha", "call_on", {"app": "gamma", "kind": "child", "name": "collect", "input": 1, "catch": True}
    )
    assert state.runtime_status == WorkflowStatus.COMPLETED
    failure = output(state)
    assert failure["error_type"] == "OrchestratorNotRegisteredError"
    assert "'collect'" in failure["message"] and "not registered" in failure["message"]
    child = shared.client("gamma").wait_for_workflow_completion(f"{parent}-child", timeout_in_seconds=WAIT)
    assert child.runtime_status == WorkflowStatus.FAILED
    assert child.failure_details.error_type == "OrchestratorNotRegisteredError"


def test_a_child_workflow_for_an_app_nothing_serves_fails_at_once_on_the_sidecar_and_waits_on_daprd(shared: Cluster):
    client = shared.client("alpha")
    instance_id = client.schedule_new_workflow(
        "call_on",
        input={"app": "nowhere", "kind": "child", "name": "whoami", "input": 1, "catch": True},
        instance_id=unique("nowhere"),
    )
    if shared.engine.name == "sidecar":
        # No worker of an app the sidecar does not serve can ever reach it: the call fails, saying so.
        state = client.wait_for_workflow_completion(instance_id, timeout_in_seconds=WAIT)
        assert state.runtime_status == WorkflowStatus.COMPLETED
        assert output(state)["error_type"] == "AppNotServedError"
        assert "targets app 'nowhere', which this sidecar does not serve" in output(state)["message"]
    else:
        # daprd retries the creation for ever (logging "failed to invoke 'CreateWorkflowInstance' on remote
        # app 'nowhere'"): the parent stays RUNNING and no failure reaches it.
        time.sleep(2)
        state = client.get_workflow_state(instance_id)
        assert (state.runtime_status, state.failure_details) == (WorkflowStatus.RUNNING, None)
        client.terminate_workflow(instance_id)
