"""Crashes: SIGKILL of the engine (the sidecar, or every daprd) mid-activity and mid-timer, restarted on the
same state, and SIGKILL of a worker mid-activity. Nothing is lost; the workers reconnect by themselves."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

from dapr.ext.workflow import WorkflowStatus

from tests.support.engine_harness import WAIT, eventually, unique


def test_a_workflow_survives_sidecar_kills_during_its_activity_and_during_its_timer(make_cluster):
    cluster = make_cluster(["alpha", "beta"])
    cluster.start_workers(("alpha", "a1"), ("beta", "b1"))
    client = cluster.client("alpha")
    key = unique("durable")
    instance_id = client.schedule_new_workflow(
        "durable", input={"key": key, "seconds": 1.5, "app": "beta", "timer_seconds": 4}, instance_id=unique("durable")
    )

    eventually(lambda: cluster.reports("slow", key), what="the activity to start on beta")
    cluster.engine.kill()
    cluster.engine.start()
    state = eventually(lambda: client.get_workflow_state(instance_id), what="the instance after the restart")
    assert state.runtime_status == WorkflowStatus.RUNNING

    # The activity's result reaches the restarted sidecar (or it is run again); then the timer is pending.
    state = eventually(
        lambda: (s := client.get_workflow_state(instance_id)) and s.serialized_custom_status == "timer" and s,
        what="the workflow to reach its timer",
    )
    assert state.runtime_status == WorkflowStatus.RUNNING
    cluster.engine.kill()
    cluster.engine.start()
    # The 4 s timer was still pending when the sidecar died, and the restarted one still knows it.
    state = eventually(lambda: client.get_workflow_state(instance_id), what="the instance after the second restart")
    assert (state.runtime_status, state.serialized_custom_status) == (WorkflowStatus.RUNNING, "timer")

    state = client.wait_for_workflow_completion(instance_id, timeout_in_seconds=WAIT)
    assert state.runtime_status == WorkflowStatus.COMPLETED
    assert json.loads(state.serialized_output) == f"{key} done by beta"
    runs = cluster.reports("slow", key)
    assert {r["phase"] for r in runs} == {"start", "end"}
    assert all(r["worker"] == "b1" for r in runs)


def test_an_activity_whose_worker_is_killed_is_delivered_again_to_a_new_worker(make_cluster):
    cluster = make_cluster(["alpha", "beta"])
    (first,) = cluster.start_workers(("beta", "b1"))
    cluster.start_workers(("alpha", "a1"))
    client = cluster.client("alpha")
    key = unique("redeliver")
    instance_id = client.schedule_new_workflow(
        "call_on",
        input={"app": "beta", "name": "slow", "input": {"key": key, "seconds": 2.0}},
        instance_id=unique("kill-worker"),
    )
    eventually(lambda: cluster.reports("slow", key), what="the activity to start on b1")
    first.kill()
    cluster.start_workers(("beta", "b2"))

    state = client.wait_for_workflow_completion(instance_id, timeout_in_seconds=WAIT)
    assert state.runtime_status == WorkflowStatus.COMPLETED
    assert json.loads(state.serialized_output) == f"{key} done by beta"
    assert [(r["worker"], r["phase"]) for r in cluster.reports("slow", key)] == [
        ("b1", "start"),
        ("b2", "start"),
        ("b2", "end"),
    ]


def test_a_suspension_its_held_event_and_a_scheduled_start_survive_a_sidecar_kill(make_cluster):
    cluster = make_cluster(["alpha"])
    cluster.start_workers(("alpha", "a1"))
    client = cluster.client("alpha")
    paused = client.schedule_new_workflow("wait_event", instance_id=unique("paused"))
    client.pause_workflow(paused)
    client.raise_workflow_event(paused, "go", data="held")
    start_at = datetime.now(UTC) + timedelta(seconds=3)
    scheduled = client.schedule_new_workflow("clock", input="later", instance_id=unique("scheduled"), start_at=start_at)

    cluster.engine.kill()
    cluster.engine.start()
    state = eventually(lambda: client.get_workflow_state(paused), what="the paused instance after the restart")
    assert state.runtime_status == WorkflowStatus.SUSPENDED
    assert client.get_workflow_state(scheduled).runtime_status == WorkflowStatus.PENDING

    client.resume_workflow(paused)  # returns once a1, reconnected by itself, has run the resume
    state = client.wait_for_workflow_completion(paused, timeout_in_seconds=WAIT)
    assert (state.runtime_status, json.loads(state.serialized_output)) == (WorkflowStatus.COMPLETED, {"got": "held"})
    state = client.wait_for_workflow_completion(scheduled, timeout_in_seconds=WAIT)
    assert state.runtime_status == WorkflowStatus.COMPLETED
    assert json.loads(state.serialized_output)["now"] >= start_at.timestamp()
