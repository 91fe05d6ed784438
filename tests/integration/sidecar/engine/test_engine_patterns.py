"""Workflow patterns through the engine: SDK-side retries of a cross-app activity, a fan-out of 100
activities shared by the two workers of one app, and when_any against a timer."""

from __future__ import annotations

import collections
import json
from pathlib import Path
from typing import Any

from dapr.ext.workflow import WorkflowStatus

from tests.support.engine_harness import WAIT, Cluster, unique


def attempts(cluster: Cluster, key: str) -> int:
    return int((Path(cluster.workdir) / f"attempts-{key}").read_text())


def run_retrying(cluster: Cluster, name: str, fail_times: int, max_attempts: int) -> tuple[str, Any]:
    """The ``retrying`` workflow on alpha, its activity on beta failing ``fail_times`` first; (key, final state)."""
    key = unique(name)
    client = cluster.client("alpha")
    instance_id = client.schedule_new_workflow(
        "retrying",
        input={"key": key, "fail_times": fail_times, "max_attempts": max_attempts, "app": "beta"},
        instance_id=unique("retry"),
    )
    return key, client.wait_for_workflow_completion(instance_id, timeout_in_seconds=WAIT)


def test_an_activity_that_fails_twice_succeeds_on_its_third_attempt_under_a_retry_policy(shared: Cluster):
    key, state = run_retrying(shared, "flaky", fail_times=2, max_attempts=5)
    assert state.runtime_status == WorkflowStatus.COMPLETED
    assert json.loads(state.serialized_output) == 3
    assert attempts(shared, key) == 3
    assert len(shared.reports("flaky", key)) == 3


def test_an_activity_still_failing_after_max_attempts_fails_the_workflow_with_its_error(shared: Cluster):
    key, state = run_retrying(shared, "hopeless", fail_times=10, max_attempts=2)
    assert state.runtime_status == WorkflowStatus.FAILED
    assert state.failure_details.error_type == "TaskFailedError"
    assert state.failure_details.message.endswith("attempt 2 failed")
    assert attempts(shared, key) == 2


def test_a_fan_out_of_100_activities_is_shared_by_the_two_workers_of_one_app(shared: Cluster):
    client = shared.client("alpha")
    instance_id = client.schedule_new_workflow(
        "fan_out", input={"count": 100, "app": "beta"}, instance_id=unique("fan")
    )
    state = client.wait_for_workflow_completion(instance_id, timeout_in_seconds=WAIT)
    assert state.runtime_status == WorkflowStatus.COMPLETED
    assert json.loads(state.serialized_output) == sum(i * i for i in range(100))
    ran = [r for r in shared.reports("square") if r["key"].startswith(f"{instance_id}:")]
    assert sorted(int(r["key"].rsplit(":", 1)[1]) for r in ran) == list(range(100))
    per_worker = collections.Counter(r["worker"] for r in ran)
    assert set(per_worker) == {"b1", "b2"}
    assert min(per_worker.values()) >= 10, per_worker


def race(cluster: Cluster, activity_seconds: float, timer_seconds: float) -> tuple[str, Any]:
    """The ``race`` workflow on beta: an activity against a timer; (instance ID, final state)."""
    client = cluster.client("beta")
    instance_id = client.schedule_new_workflow(
        "race", input={"activity_seconds": activity_seconds, "timer_seconds": timer_seconds}, instance_id=unique("race")
    )
    return instance_id, client.wait_for_workflow_completion(instance_id, timeout_in_seconds=WAIT)


def test_when_any_returns_the_timer_when_the_activity_is_slower(shared: Cluster):
    _, state = race(shared, activity_seconds=2, timer_seconds=0.3)
    assert state.runtime_status == WorkflowStatus.COMPLETED
    assert json.loads(state.serialized_output) == "timer"


def test_when_any_returns_the_activity_when_the_timer_is_slower(shared: Cluster):
    instance_id, state = race(shared, activity_seconds=0, timer_seconds=30)
    assert state.runtime_status == WorkflowStatus.COMPLETED
    assert json.loads(state.serialized_output) == f"{instance_id} done by beta"


def test_a_failing_child_on_another_app_is_retried_under_the_same_instance_id_until_it_succeeds(shared: Cluster):
    key = unique("flaky-child")
    client = shared.client("alpha")
    instance_id = client.schedule_new_workflow(
        "child_retrying",
        input={"key": key, "fail_times": 2, "max_attempts": 3, "app": "beta"},
        instance_id=unique("child-retry"),
    )
    state = client.wait_for_workflow_completion(instance_id, timeout_in_seconds=WAIT)
    assert state.runtime_status == WorkflowStatus.COMPLETED
    assert json.loads(state.serialized_output) == 3
    assert attempts(shared, key) == 3
    # On daprd the child's own status can lag its parent's result (sidecar/README.md, "Known differences").
    child = shared.client("beta").wait_for_workflow_completion(f"{instance_id}-child", timeout_in_seconds=WAIT)
    assert (child.runtime_status, json.loads(child.serialized_output)) == (WorkflowStatus.COMPLETED, 3)
