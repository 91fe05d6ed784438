"""What a workflow turn's actions produce, worked out without doing any of it.

After durabletask-go's ``backend/runtimestate`` (``ApplyActions``): given an instance as it stands, the events
of the turn handed to the worker, the worker's answer and the time, ``apply_turn`` returns the history the
turn adds, the instance fields it changes, and, in action order, what must follow: events for this
instance's own inbox (timers, failures of work no app here serves), activities to dispatch and child
workflows to start. The engine persists all of it in one transaction and only then sends anything. Nothing
here reads the clock, the store or another instance, so it is tested in-process (``test_applier.py``).
"""

from __future__ import annotations

import collections
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from dapr.ext.workflow._durabletask.internal import protos as pb
from google.protobuf.message import Message

from .access_policy import ACTIVITY, DENIED_MESSAGE, DENIED_TYPE, WORKFLOW, AccessPolicies
from .model import CONTINUED_AS_NEW, SENTINEL_SECONDS, TERMINATED, Instance, event, seconds, string_value

if TYPE_CHECKING:
    from .model import PropagationScope, StalledReason, Status


@dataclass
class Deliver:
    """An event for this instance's own inbox, tied to its current generation, visible from ``visible_at``."""

    event: pb.HistoryEvent
    visible_at: float
    error: str | None = None  # set when the event fails work that could not run; the engine logs it


@dataclass
class ScheduleActivity:
    target_app: str
    task_id: int
    request: pb.ActivityRequest


@dataclass
class StartChild:
    target_app: str
    task_id: int
    action: pb.CreateChildWorkflowAction
    router: pb.TaskRouter
    propagated: pb.PropagatedHistory | None
    trace: pb.TraceContext | None = None


Effect = Deliver | ScheduleActivity | StartChild


@dataclass
class Completion:
    status: Status
    result: str | None
    failure: pb.TaskFailureDetails | None
    recurse: bool  # a delivered recursive terminate: the children end too


@dataclass
class ContinueAsNew:
    """The new generation's first inbox events. The engine gives ``started`` its new execution ID."""

    started: pb.HistoryEvent
    carryover: list[pb.HistoryEvent]
    input: str | None
    incoming_history: bytes | None


@dataclass
class TurnResult:
    stall: tuple[StalledReason, str] | None = None  # (reason, description): keep nothing of the turn
    history: list[pb.HistoryEvent] = field(default_factory=list)  # to append, in order
    name: str = ""
    created: float = 0.0
    suspended: bool = False
    custom_status: str | None = None
    effects: list[Effect] = field(default_factory=list)
    ignored: list[str] = field(default_factory=list)  # kinds of action this engine does not support
    completion: Completion | None = None
    continue_as_new: ContinueAsNew | None = None


def history_patches(history: list[pb.HistoryEvent]) -> list[str]:
    """Every patch the history's WorkflowStarted events recorded, in order (each records only its new ones)."""
    return [p for e in history if e.HasField("workflowStarted") for p in e.workflowStarted.version.patches]


def compact_patches(version: pb.WorkflowVersion, history: list[pb.HistoryEvent]) -> pb.WorkflowVersion:
    """The version to record for a turn, as daprd records it: of the patches the turn reports, only those not
    already in the history (counted, so a patch reported twice is kept once more than recorded)."""
    if not version.patches:
        return version
    seen = collections.Counter(history_patches(history))
    new = []
    for patch in version.patches:
        if seen[patch]:
            seen[patch] -= 1
        else:
            new.append(patch)
    # daprd replaces the whole version, its name included, by the new patches alone.
    return pb.WorkflowVersion(patches=new) if new else pb.WorkflowVersion()


def stall_reason(history: list[pb.HistoryEvent], response: pb.WorkflowResponse) -> tuple[StalledReason, str] | None:
    """Why this turn stalls the instance, as daprd decides it: the worker lacks the workflow's version,
    or the patches recorded in the history are not a prefix of the patches the turn reports."""
    if any(a.HasField("workflowVersionNotAvailable") for a in response.actions):
        name = next((e.workflowStarted.version.name for e in history if e.HasField("workflowStarted")), "")
        return pb.VERSION_NOT_AVAILABLE, f"Version not available: {name}"
    recorded = history_patches(history)
    current = list(response.version.patches) if response.HasField("version") else []
    if recorded and current[: len(recorded)] != recorded:
        return pb.PATCH_MISMATCH, (
            f"Patch mismatch. History patches: [{', '.join(recorded)}], current patches: [{', '.join(current)}]. "
        )
    return None


def propagate(
    inst: Instance, scope: PropagationScope, turn_events: list[pb.HistoryEvent]
) -> pb.PropagatedHistory | None:
    """The history an action sends along, as daprd assembles it when it applies the action: for
    ``OWN_HISTORY`` one chunk of this instance's events so far (its history, then this turn's events up to
    and including the action's own); for ``LINEAGE`` the chunks this instance received first."""
    if scope == pb.HISTORY_PROPAGATION_SCOPE_NONE:
        return None
    chunks: list[pb.PropagatedHistoryChunk] = []
    if scope == pb.HISTORY_PROPAGATION_SCOPE_LINEAGE and inst.incoming_history is not None:
        chunks.extend(pb.PropagatedHistory.FromString(inst.incoming_history).chunks)
    events = inst.history + turn_events
    name = next((e.executionStarted.name for e in events if e.HasField("executionStarted")), "")
    chunks.append(
        pb.PropagatedHistoryChunk(
            appId=inst.app_id,
            instanceId=inst.instance_id,
            workflowName=name,
            rawEvents=[e.SerializeToString(deterministic=True) for e in events],
        )
    )
    return pb.PropagatedHistory(scope=scope, chunks=chunks)


def unserved(target: str, served: frozenset[str], what: str) -> pb.TaskFailureDetails | None:
    """The failure of work for an app this sidecar does not serve, or None when it serves it (or serves
    anything: an empty ``served`` means no app list was given). Such work could never run here (no worker of
    that app can reach this process), so it fails at once as a task failure of the caller. daprd would retry it."""
    if not served or target in served:
        return None
    message = (
        f"{what} targets app {target!r}, which this sidecar does not serve (it serves "
        f"{', '.join(sorted(served))}); sidecars do not call each other: serve every app that "
        f"calls another from one sidecar (python -m sidecar serve --app A=PORT --app B=PORT)"
    )
    return pb.TaskFailureDetails(errorType="AppNotServedError", errorMessage=message)


def denied(
    policies: AccessPolicies | None, caller: str, target: str, kind: str, name: str
) -> pb.TaskFailureDetails | None:
    """daprd's failure for work a ``WorkflowAccessPolicy`` of the target app does not allow the caller, or None."""
    if policies is None or policies.allows(caller, target, kind, name):
        return None
    return pb.TaskFailureDetails(errorType=DENIED_TYPE, errorMessage=DENIED_MESSAGE)


def refusal(
    served: frozenset[str], policies: AccessPolicies | None, caller: str, target: str, kind: str, name: str, what: str
) -> tuple[pb.TaskFailureDetails, str] | None:
    """Why work for ``target`` cannot run, as the failure the caller gets and a line for the log; None if it can.
    First an app this sidecar does not serve, then a WorkflowAccessPolicy of the target that denies it."""
    failure = unserved(target, served, what)
    if failure is not None:
        return failure, failure.errorMessage
    denial = denied(policies, caller, target, kind, name)
    if denial is not None:
        return denial, f"app {caller!r} may not schedule {kind} {name!r} on app {target!r}: {DENIED_MESSAGE}"
    return None


def _optional(message: Message, name: str) -> Any:  # a protobuf field of any type
    return getattr(message, name) if message.HasField(name) else None


def apply_turn(
    inst: Instance,
    turn_events: list[pb.HistoryEvent],
    response: pb.WorkflowResponse,
    *,
    now: float,
    served: frozenset[str] = frozenset(),
    policies: AccessPolicies | None = None,
) -> TurnResult:
    """What the worker's ``response`` to a turn of ``inst`` whose new events were ``turn_events`` produces."""
    stall = stall_reason(inst.history, response)
    if stall is not None:
        return TurnResult(stall=stall)
    app_id = inst.app_id
    started = pb.HistoryEvent()
    started.CopyFrom(turn_events[0])
    if response.HasField("version"):
        started.workflowStarted.version.CopyFrom(compact_patches(response.version, inst.history))
        if started.workflowStarted.version == pb.WorkflowVersion():
            started.workflowStarted.ClearField("version")
    new_events = [started, *turn_events[1:]]

    out = TurnResult(
        name=inst.name,
        created=inst.created,
        suspended=inst.suspended,
        custom_status=response.customStatus.value if response.HasField("customStatus") else None,
    )
    terminate_event = None
    for e in new_events:
        if e.HasField("executionStarted"):
            out.name = e.executionStarted.name
            out.created = seconds(e.timestamp)
        elif e.HasField("executionSuspended"):
            out.suspended = True
        elif e.HasField("executionResumed"):
            out.suspended = False
        elif e.HasField("executionTerminated") and terminate_event is None:
            terminate_event = e.executionTerminated

    # The trace the workflow's work joins: the one its start carried (daprd would put its own workflow span
    # between; the sidecar records no spans, so activities join the caller's trace directly).
    trace = next(
        (
            e.executionStarted.parentTraceContext
            for e in (*inst.history, *new_events)
            if e.HasField("executionStarted") and e.executionStarted.HasField("parentTraceContext")
        ),
        None,
    )
    action_events: list[pb.HistoryEvent] = []
    completion: pb.CompleteWorkflowAction | None = None
    completion_id = -1
    completion_router = pb.TaskRouter(sourceAppID=app_id)
    for action in response.actions:
        router = pb.TaskRouter()
        router.CopyFrom(action.router)
        router.sourceAppID = app_id
        target = router.targetAppID if router.HasField("targetAppID") else app_id
        kind = action.WhichOneof("workflowActionType")
        if kind == "scheduleTask":
            a = action.scheduleTask
            ev = event(
                now,
                action.id,
                router,
                taskScheduled=pb.TaskScheduledEvent(
                    name=a.name,
                    version=_optional(a, "version"),
                    input=_optional(a, "input"),
                    taskExecutionId=a.taskExecutionId,
                    historyPropagationScope=a.historyPropagationScope,
                    parentTraceContext=trace,
                ),
            )
            action_events.append(ev)
            refused = refusal(served, policies, app_id, target, ACTIVITY, a.name, f"activity {a.name!r}")
            if refused is not None:
                details, why = refused
                failed = event(now, taskFailed=pb.TaskFailedEvent(taskScheduledId=action.id, failureDetails=details))
                out.effects.append(Deliver(failed, now, why))
                continue
            request = pb.ActivityRequest(
                name=a.name,
                version=ev.taskScheduled.version if a.HasField("version") else None,
                input=_optional(a, "input"),
                workflowInstance=pb.WorkflowInstance(
                    instanceId=inst.instance_id, executionId=string_value(inst.execution_id)
                ),
                taskId=action.id,
                taskExecutionId=a.taskExecutionId,
                parentTraceContext=trace,
            )
            propagated = propagate(inst, a.historyPropagationScope, new_events + action_events)
            if propagated is not None:
                request.propagatedHistory.CopyFrom(propagated)
            out.effects.append(ScheduleActivity(target, action.id, request))
        elif kind == "createTimer":
            t = action.createTimer
            origin = t.WhichOneof("origin")
            created = pb.TimerCreatedEvent(fireAt=t.fireAt, name=t.name)
            if origin:
                getattr(created, origin).CopyFrom(getattr(t, origin))
            action_events.append(event(now, action.id, router, timerCreated=created))
            if t.fireAt.seconds < SENTINEL_SECONDS:  # the sentinel "never" timer is never armed
                fired = event(now, timerFired=pb.TimerFiredEvent(fireAt=t.fireAt, timerId=action.id))
                out.effects.append(Deliver(fired, seconds(t.fireAt)))
        elif kind == "createChildWorkflow":
            c = action.createChildWorkflow
            action_events.append(
                event(
                    now,
                    action.id,
                    router,
                    childWorkflowInstanceCreated=pb.ChildWorkflowInstanceCreatedEvent(
                        instanceId=c.instanceId,
                        name=c.name,
                        version=_optional(c, "version"),
                        input=_optional(c, "input"),
                        historyPropagationScope=c.historyPropagationScope,
                    ),
                )
            )
            propagated = propagate(inst, c.historyPropagationScope, new_events + action_events)
            refused = refusal(
                served, policies, app_id, target, WORKFLOW, c.name, f"child workflow {c.name!r} ({c.instanceId})"
            )
            if refused is not None:
                details, why = refused
                failed = event(
                    now,
                    childWorkflowInstanceFailed=pb.ChildWorkflowInstanceFailedEvent(
                        taskScheduledId=action.id, failureDetails=details
                    ),
                )
                out.effects.append(Deliver(failed, now, why))
                continue
            out.effects.append(StartChild(target, action.id, c, router, propagated, trace))
        elif kind == "completeWorkflow":
            if completion is None:  # the first one wins
                completion, completion_id, completion_router = action.completeWorkflow, action.id, router
        else:
            out.ignored.append(str(kind))  # recorded nowhere; the engine logs it

    if terminate_event is not None and (completion is None or completion.workflowStatus != TERMINATED):
        # daprd forces the outcome of a delivered terminate, whatever the workflow answered.
        completion = pb.CompleteWorkflowAction(workflowStatus=TERMINATED, result=_optional(terminate_event, "input"))

    if completion is not None and completion.workflowStatus == CONTINUED_AS_NEW:
        out.continue_as_new = _continue_as_new(inst, new_events, action_events, completion, now)
        out.effects = []  # what the old generation scheduled in this turn is dropped with it, as daprd does
        return out

    out.history = new_events + action_events
    if completion is not None:
        out.history.append(
            event(
                now,
                completion_id,
                completion_router,
                executionCompleted=pb.ExecutionCompletedEvent(
                    workflowStatus=completion.workflowStatus,
                    result=_optional(completion, "result"),
                    failureDetails=_optional(completion, "failureDetails"),
                ),
            )
        )
        out.completion = Completion(
            status=completion.workflowStatus,
            result=completion.result.value if completion.HasField("result") else None,
            failure=_optional(completion, "failureDetails"),
            recurse=terminate_event.recurse if terminate_event is not None else False,
        )
    return out


def _continue_as_new(
    inst: Instance,
    new_events: list[pb.HistoryEvent],
    action_events: list[pb.HistoryEvent],
    completion: pb.CompleteWorkflowAction,
    now: float,
) -> ContinueAsNew:
    old_started = next((e for e in inst.history + new_events if e.HasField("executionStarted")), None)
    router = old_started.router if old_started is not None else pb.TaskRouter(sourceAppID=inst.app_id)
    old = old_started.executionStarted if old_started is not None else pb.ExecutionStartedEvent(name=inst.name)
    incoming = None
    if inst.incoming_history is not None:
        # The propagation chain goes on into the new generation, with this generation's events in it.
        received = pb.PropagatedHistory.FromString(inst.incoming_history)
        chain = propagate(inst, received.scope, new_events + action_events)
        incoming = chain.SerializeToString() if chain is not None else None
    version = completion.newVersion if completion.HasField("newVersion") else _optional(old, "version")
    started = pb.ExecutionStartedEvent(
        name=old.name,
        version=version,
        input=_optional(completion, "result"),
        workflowInstance=pb.WorkflowInstance(instanceId=inst.instance_id),
        parentInstance=_optional(old, "parentInstance"),
    )
    return ContinueAsNew(
        started=event(now, router=router, executionStarted=started),
        carryover=list(completion.carryoverEvents),
        input=completion.result.value if completion.HasField("result") else None,
        incoming_history=incoming,
    )
