"""History propagation (``propagation=PropagationScope.OWN_HISTORY`` / ``LINEAGE`` of dapr-ext-workflow 1.18):
what a child workflow and an activity receive of their callers' histories, across apps. Each hop reports
the chunks it received: app, instance, workflow name and the kinds of their events."""

from __future__ import annotations

import json

from dapr.ext.workflow import WorkflowStatus

from tests.support.engine_harness import WAIT, Cluster, unique

FIRST_TURN = ["workflowStarted", "executionStarted"]


def run_propagate(
    cluster: Cluster, scope: str | None, hops: list[str], activity_app: str, warm_up: bool = False
) -> tuple[str, list]:
    client = cluster.client("alpha")
    instance_id = client.schedule_new_workflow(
        "propagate",
        input={"scope": scope, "hops": hops, "activity_app": activity_app, "warm_up": warm_up},
        instance_id=unique("propagate"),
    )
    state = client.wait_for_workflow_completion(instance_id, timeout_in_seconds=WAIT)
    assert state.runtime_status == WorkflowStatus.COMPLETED, state.failure_details
    return instance_id, json.loads(state.serialized_output)


def chunk(app: str, instance: str, events: list[str]) -> dict:
    return {"app": app, "instance": instance, "name": "propagate", "events": events}


def test_without_a_scope_nothing_is_propagated(shared: Cluster):
    _, seen = run_propagate(shared, None, ["beta"], "gamma")
    assert seen == [None, None, None]


def test_lineage_hands_every_ancestors_history_down_a_chain_of_apps_to_the_activity(shared: Cluster):
    root, seen = run_propagate(shared, "LINEAGE", ["beta", "gamma"], "alpha")
    child, grandchild = f"{root}>beta", f"{root}>beta>gamma"
    root_chunk = chunk("alpha", root, [*FIRST_TURN, "childWorkflowInstanceCreated"])
    child_chunk = chunk("beta", child, [*FIRST_TURN, "childWorkflowInstanceCreated"])
    grandchild_chunk = chunk("gamma", grandchild, [*FIRST_TURN, "taskScheduled"])
    assert seen == [
        None,  # the root received nothing
        {"scope": "LINEAGE", "workflows": [root_chunk]},
        {"scope": "LINEAGE", "workflows": [root_chunk, child_chunk]},
        {"scope": "LINEAGE", "workflows": [root_chunk, child_chunk, grandchild_chunk]},  # the activity, on alpha
    ]


def test_own_history_hands_on_only_the_callers_history_as_it_was_when_it_called(shared: Cluster):
    root, seen = run_propagate(shared, "OWN_HISTORY", ["beta"], "gamma", warm_up=True)
    # Each caller's chunk holds its history up to the call: the first turn (with the warm-up activity), then
    # the turn that got its result and made the call.
    turns = [*FIRST_TURN, "taskScheduled", "workflowStarted", "taskCompleted"]
    assert seen == [
        None,
        {"scope": "OWN_HISTORY", "workflows": [chunk("alpha", root, [*turns, "childWorkflowInstanceCreated"])]},
        {"scope": "OWN_HISTORY", "workflows": [chunk("beta", f"{root}>beta", [*turns, "taskScheduled"])]},
    ]


def test_lineage_carries_over_a_continue_as_new_with_the_old_generations_events(shared: Cluster):
    client = shared.client("alpha")
    root = client.schedule_new_workflow(
        "propagate",
        input={"scope": "LINEAGE", "hops": ["beta"], "activity_app": "beta", "child": "generations"},
        instance_id=unique("propagate"),
    )
    state = client.wait_for_workflow_completion(root, timeout_in_seconds=WAIT)
    assert state.runtime_status == WorkflowStatus.COMPLETED, state.failure_details
    child = f"{root}>beta"
    root_chunk = chunk("alpha", root, [*FIRST_TURN, "childWorkflowInstanceCreated"])
    first_generation = {**chunk("beta", child, FIRST_TURN), "name": "generations"}
    # The SDK lists a workflow's events per instance ID, so both generations' chunks show the events of both.
    both_generations = {**chunk("beta", child, [*FIRST_TURN, *FIRST_TURN, "taskScheduled"]), "name": "generations"}
    assert json.loads(state.serialized_output) == [
        None,
        {"scope": "LINEAGE", "workflows": [root_chunk]},  # the first generation
        {"scope": "LINEAGE", "workflows": [root_chunk, first_generation]},  # the second: its first generation added
        {"scope": "LINEAGE", "workflows": [root_chunk, both_generations, both_generations]},  # the activity
    ]
