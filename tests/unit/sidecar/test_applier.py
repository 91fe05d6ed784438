"""The applier in-process: what a turn's actions produce, worked out from the instance, the turn and the
worker's answer alone (no store, no clock, no streams)."""

from __future__ import annotations

from dapr.ext.workflow._durabletask.internal import protos as pb
from google.protobuf import timestamp_pb2, wrappers_pb2

from sidecar import applier
from sidecar.model import COMPLETED, TERMINATED, Instance, event, seconds, timestamp

NOW = 1_700_000_000.0


def started_instance(app: str = "orders") -> Instance:
    inst = Instance(app, "o-1", name="saga", execution_id="exec-1", started=True)
    inst.history = [
        event(NOW - 5, workflowStarted=pb.WorkflowStartedEvent()),
        event(NOW - 5, executionStarted=pb.ExecutionStartedEvent(name="saga")),
    ]
    return inst


def turn(*inbox: pb.HistoryEvent) -> list[pb.HistoryEvent]:
    return [event(NOW, workflowStarted=pb.WorkflowStartedEvent()), *inbox]


def schedule(task_id: int, name: str, target: str | None = None, data: str = '"x"') -> pb.WorkflowAction:
    router = pb.TaskRouter(targetAppID=target) if target else None
    return pb.WorkflowAction(
        id=task_id,
        router=router,
        scheduleTask=pb.ScheduleTaskAction(name=name, input=wrappers_pb2.StringValue(value=data)),
    )


def complete(task_id: int, status: int = COMPLETED, result: str | None = None) -> pb.WorkflowAction:
    return pb.WorkflowAction(
        id=task_id,
        completeWorkflow=pb.CompleteWorkflowAction(
            workflowStatus=status, result=wrappers_pb2.StringValue(value=result) if result is not None else None
        ),
    )


def answer(*actions: pb.WorkflowAction, **kwargs) -> pb.WorkflowResponse:
    return pb.WorkflowResponse(instanceId="o-1", actions=list(actions), **kwargs)


def kinds(events: list[pb.HistoryEvent]) -> list[str]:
    return [e.WhichOneof("eventType") for e in events]


def test_an_activity_for_another_app_is_recorded_and_scheduled_there() -> None:
    inst = started_instance()
    out = applier.apply_turn(
        inst, turn(), answer(schedule(0, "charge", target="payment")), now=NOW, served=frozenset({"orders", "payment"})
    )
    assert kinds(out.history) == ["workflowStarted", "taskScheduled"]
    scheduled = out.history[1]
    assert (scheduled.eventId, scheduled.taskScheduled.name) == (0, "charge")
    assert (scheduled.router.sourceAppID, scheduled.router.targetAppID) == ("orders", "payment")
    [effect] = out.effects
    assert isinstance(effect, applier.ScheduleActivity)
    assert (effect.target_app, effect.task_id) == ("payment", 0)
    assert effect.request.name == "charge" and effect.request.input.value == '"x"'
    assert effect.request.workflowInstance.instanceId == "o-1"
    assert effect.request.workflowInstance.executionId.value == "exec-1"
    assert out.completion is None and out.continue_as_new is None and out.stall is None


def test_an_activity_without_a_router_runs_on_the_callers_app() -> None:
    out = applier.apply_turn(started_instance(), turn(), answer(schedule(0, "note")), now=NOW)
    [effect] = out.effects
    assert isinstance(effect, applier.ScheduleActivity) and effect.target_app == "orders"


def test_work_for_an_app_nobody_serves_fails_at_once_as_a_task_failure() -> None:
    out = applier.apply_turn(
        started_instance(),
        turn(),
        answer(schedule(3, "ship", target="shipping")),
        now=NOW,
        served=frozenset({"orders"}),
    )
    assert kinds(out.history) == ["workflowStarted", "taskScheduled"]  # still recorded, as an action
    [effect] = out.effects
    assert isinstance(effect, applier.Deliver)
    assert effect.event.taskFailed.taskScheduledId == 3
    assert effect.event.taskFailed.failureDetails.errorType == "AppNotServedError"
    assert "'shipping'" in effect.error and effect.visible_at == NOW


def test_a_timer_is_recorded_and_fires_into_the_inbox_at_its_time() -> None:
    fire_at = timestamp(NOW + 30)
    never = pb.WorkflowAction(
        id=2, createTimer=pb.CreateTimerAction(fireAt=timestamp_pb2.Timestamp(seconds=253402300799))
    )
    timer = pb.WorkflowAction(id=1, createTimer=pb.CreateTimerAction(fireAt=fire_at, name="wait"))
    out = applier.apply_turn(started_instance(), turn(), answer(timer, never), now=NOW)
    assert kinds(out.history) == ["workflowStarted", "timerCreated", "timerCreated"]
    [effect] = out.effects  # the SDK's "never" timer is recorded but never armed
    assert isinstance(effect, applier.Deliver)
    assert effect.event.timerFired.timerId == 1 and effect.visible_at == seconds(fire_at)


def test_completing_records_the_outcome_last_and_the_first_completion_wins() -> None:
    out = applier.apply_turn(
        started_instance(),
        turn(),
        answer(schedule(0, "a"), complete(1, result='"done"'), complete(2, TERMINATED)),
        now=NOW,
    )
    assert kinds(out.history) == ["workflowStarted", "taskScheduled", "executionCompleted"]
    assert out.history[-1].eventId == 1
    assert out.completion == applier.Completion(COMPLETED, '"done"', None, recurse=False)


def test_a_delivered_terminate_forces_the_outcome_whatever_the_workflow_answered() -> None:
    terminate = event(
        NOW,
        executionTerminated=pb.ExecutionTerminatedEvent(input=wrappers_pb2.StringValue(value='"stop"'), recurse=True),
    )
    out = applier.apply_turn(started_instance(), turn(terminate), answer(complete(0, result='"fine"')), now=NOW)
    assert out.completion == applier.Completion(TERMINATED, '"stop"', None, recurse=True)
    assert out.history[-1].executionCompleted.workflowStatus == TERMINATED


def test_continue_as_new_keeps_no_history_and_drops_what_the_old_generation_scheduled() -> None:
    carry = event(NOW, eventRaised=pb.EventRaisedEvent(name="more"))
    action = pb.WorkflowAction(
        id=1,
        completeWorkflow=pb.CompleteWorkflowAction(
            workflowStatus=pb.ORCHESTRATION_STATUS_CONTINUED_AS_NEW,
            result=wrappers_pb2.StringValue(value="7"),
            carryoverEvents=[carry],
        ),
    )
    out = applier.apply_turn(started_instance(), turn(), answer(schedule(0, "a"), action), now=NOW)
    assert out.history == [] and out.effects == [] and out.completion is None
    new = out.continue_as_new
    assert new is not None and new.input == "7" and new.carryover == [carry]
    assert new.started.executionStarted.name == "saga"
    assert new.started.executionStarted.input.value == "7"


def test_the_turn_sets_custom_status_and_follows_suspend_and_resume() -> None:
    inst = started_instance()
    suspended = applier.apply_turn(
        inst,
        turn(event(NOW, executionSuspended=pb.ExecutionSuspendedEvent())),
        answer(customStatus=wrappers_pb2.StringValue(value='{"step": 2}')),
        now=NOW,
    )
    assert suspended.suspended is True and suspended.custom_status == '{"step": 2}'
    inst.suspended = True
    resumed = applier.apply_turn(inst, turn(event(NOW, executionResumed=pb.ExecutionResumedEvent())), answer(), now=NOW)
    assert resumed.suspended is False and resumed.custom_status is None


def test_a_worker_without_the_version_stalls_the_instance_and_nothing_is_kept() -> None:
    inst = started_instance()
    inst.history[0].workflowStarted.version.name = "v2"
    missing = pb.WorkflowAction(id=0, workflowVersionNotAvailable=pb.WorkflowVersionNotAvailableAction())
    out = applier.apply_turn(inst, turn(), answer(missing), now=NOW)
    assert out.stall == (pb.VERSION_NOT_AVAILABLE, "Version not available: v2")
    assert out.history == [] and out.effects == []


def test_patches_must_extend_the_recorded_ones_and_only_new_ones_are_recorded() -> None:
    inst = started_instance()
    inst.history[0].workflowStarted.version.patches.extend(["p1"])
    mismatch = applier.apply_turn(inst, turn(), answer(version=pb.WorkflowVersion(patches=["p2"])), now=NOW)
    assert mismatch.stall is not None and mismatch.stall[0] == pb.PATCH_MISMATCH
    grown = applier.apply_turn(inst, turn(), answer(version=pb.WorkflowVersion(patches=["p1", "p2"])), now=NOW)
    assert list(grown.history[0].workflowStarted.version.patches) == ["p2"]
    same = applier.apply_turn(inst, turn(), answer(version=pb.WorkflowVersion(patches=["p1"])), now=NOW)
    assert not same.history[0].workflowStarted.HasField("version")


def test_applying_a_turn_changes_neither_the_instance_nor_the_turn() -> None:
    inst = started_instance()
    events = turn(event(NOW, executionSuspended=pb.ExecutionSuspendedEvent()))
    before = ([e.SerializeToString() for e in inst.history], [e.SerializeToString() for e in events], inst.suspended)
    applier.apply_turn(
        inst, events, answer(schedule(0, "a"), complete(1), version=pb.WorkflowVersion(patches=["p"])), now=NOW
    )
    assert (
        [e.SerializeToString() for e in inst.history],
        [e.SerializeToString() for e in events],
        inst.suspended,
    ) == before


def test_work_a_policy_of_the_target_does_not_allow_fails_as_daprd_denies_it(tmp_path) -> None:
    from sidecar.access_policy import load_policies

    (tmp_path / "p.yaml").write_text(
        "apiVersion: dapr.io/v1alpha1\nkind: WorkflowAccessPolicy\nmetadata: {name: pay}\nscopes: [payment]\n"
        "spec:\n  rules:\n    - callers: [{appID: orders}]\n      activities: [{name: charge}, {name: ref*}]\n"
    )
    policies = load_policies([tmp_path])
    actions = answer(
        schedule(0, "charge", target="payment"),
        schedule(1, "refund", target="payment"),
        schedule(2, "ship", target="payment"),
    )
    out = applier.apply_turn(started_instance(), turn(), actions, now=NOW, policies=policies)
    assert [type(e).__name__ for e in out.effects] == ["ScheduleActivity", "ScheduleActivity", "Deliver"]
    denied = out.effects[2]
    assert denied.event.taskFailed.failureDetails.errorType == "WorkflowAccessPolicyDenied"
    assert denied.event.taskFailed.failureDetails.errorMessage == "access denied by workflow access policy"
    other = applier.apply_turn(
        started_instance("shop"), turn(), answer(schedule(0, "charge", target="payment")), now=NOW, policies=policies
    )
    assert isinstance(other.effects[0], applier.Deliver)  # a caller no rule names


def test_activities_and_children_join_the_trace_the_workflow_was_started_in() -> None:
    from sidecar.model import trace_context

    traceparent = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
    assert trace_context("00-" + "0" * 32 + "-00f067aa0ba902b7-01") is None and trace_context("junk") is None
    inst = started_instance()
    inst.history[1].executionStarted.parentTraceContext.CopyFrom(trace_context(traceparent, "k=v"))
    child = pb.WorkflowAction(id=1, createChildWorkflow=pb.CreateChildWorkflowAction(instanceId="c", name="sub"))
    out = applier.apply_turn(inst, turn(), answer(schedule(0, "charge"), child), now=NOW)
    activity, start = out.effects
    assert activity.request.parentTraceContext.traceParent == traceparent
    assert activity.request.parentTraceContext.spanID == "00f067aa0ba902b7"
    assert activity.request.parentTraceContext.traceState.value == "k=v"
    assert out.history[1].taskScheduled.parentTraceContext.traceParent == traceparent
    assert start.trace is not None and start.trace.traceParent == traceparent
    untraced = applier.apply_turn(started_instance(), turn(), answer(schedule(0, "charge")), now=NOW)
    assert not untraced.effects[0].request.HasField("parentTraceContext")
