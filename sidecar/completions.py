"""What the workers' answers do: a turn's outcome (worked out by ``applier``, then written and sent through the
engine's ``transition``), an activity's result, and the transitions they lead to: a stall, the end of an
instance (its parent told, its children terminated on a recursive terminate), a continue-as-new, a child
workflow started on its app."""

from __future__ import annotations

import functools
import logging
import uuid
from typing import TYPE_CHECKING

from dapr.ext.workflow._durabletask.internal import protos as pb

from . import applier
from .model import (
    COMPLETED,
    FAILED,
    RUNNING,
    STALLED,
    TERMINATED,
    Activity,
    Instance,
    seconds,
    status_name,
    string_value,
)

if TYPE_CHECKING:
    from .engine import Engine, Transition
    from .model import StalledReason, Status

log = logging.getLogger("sidecar.engine")


class Completions:
    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    def complete_turn(self, app_id: str, response: pb.WorkflowResponse) -> None:
        inst = self.engine.instances.get((app_id, response.instanceId))
        if inst is None or inst.turn is None:
            log.debug("dropping a completion for %s/%s: no turn in flight", app_id, response.instanceId)
            return
        if response.completionToken and response.completionToken != inst.turn.token:
            log.debug("dropping a stale completion for %s/%s", app_id, response.instanceId)
            return
        turn = inst.turn
        turn.stream.turns.discard(inst.key)
        inst.turn = None
        result = applier.apply_turn(
            inst,
            turn.new_events,
            response,
            now=self.engine.clock.now(),
            served=self.engine.apps,
            policies=self.engine.policies,
        )
        for kind in result.ignored:
            log.warning("app %s: ignoring unsupported action %s from the worker of %s", app_id, kind, inst.instance_id)
        if result.stall is not None:
            self._stall(inst, *result.stall)
            return
        with self.engine.transition() as t:
            consumed = set(turn.inbox_ids)
            inst.inbox = [i for i in inst.inbox if i.id not in consumed]
            t.tx.delete_inbox(turn.inbox_ids)
            inst.name, inst.created, inst.suspended = result.name, result.created, result.suspended
            inst.custom_status = result.custom_status
            inst.started, inst.stalled, inst.continued_as_new = True, False, False
            if result.continue_as_new is not None:
                self._continue_as_new(t, inst, result.continue_as_new)
                return
            for effect in result.effects:
                self._apply_effect(t, inst, effect)
            t.tx.append_history(
                app_id, inst.instance_id, len(inst.history), (e.SerializeToString() for e in result.history)
            )
            inst.history.extend(result.history)
            inst.updated = seconds(inst.history[-1].timestamp)
            if result.completion is not None:
                c = result.completion
                self.finish(t, inst, c.status, c.result, c.failure, c.recurse)
                return
            inst.status = inst.derive_status()
            t.tx.put_instance(inst.row())
            t.notify.append(inst.key)
            t.wake.append(inst)

    def _apply_effect(self, t: Transition, inst: Instance, effect: applier.Effect) -> None:
        if isinstance(effect, applier.Deliver):
            if effect.error is not None:
                log.error("app %s: workflow %s: %s", inst.app_id, inst.instance_id, effect.error)
            self.engine.deliver(t, inst, effect.event, inst.generation, visible_at=effect.visible_at)
        elif isinstance(effect, applier.ScheduleActivity):
            act = Activity(
                self.engine.store.new_id(),
                effect.target_app,
                inst.app_id,
                inst.instance_id,
                inst.generation,
                effect.task_id,
                effect.request,
            )
            t.tx.add_activity(
                act.id,
                act.target_app,
                act.source_app,
                act.instance_id,
                act.generation,
                act.task_id,
                act.request.SerializeToString(),
            )
            t.then.append(lambda: self._dispatch_activity(act))
        else:
            self._create_child(t, inst, effect)

    def _dispatch_activity(self, act: Activity) -> None:
        self.engine.dispatcher.enqueue_activity(act)
        self.engine.dispatcher.pump(act.target_app)

    def _stall(self, inst: Instance, reason: StalledReason, description: str) -> None:
        """STALLED: nothing of the turn is kept (its events stay in the inbox), an ExecutionStalled event is
        recorded unless the last one says the same, and the instance is tried again when a worker of its app
        connects, which may carry the code it needs."""
        inst.stalled = True
        inst.status = STALLED
        self.engine.dispatcher.hold(inst.key)
        with self.engine.transition() as t:
            last = inst.history[-1] if inst.history else None
            if (
                last is None
                or not last.HasField("executionStalled")
                or last.executionStalled.description != description
            ):
                inst.history.append(
                    self.engine.event(executionStalled=pb.ExecutionStalledEvent(reason=reason, description=description))
                )
                t.tx.append_history(
                    inst.app_id, inst.instance_id, len(inst.history) - 1, [inst.history[-1].SerializeToString()]
                )
                inst.updated = self.engine.clock.now()
            t.tx.put_instance(inst.row())
            t.notify.append(inst.key)
        log.warning("app %s: workflow %s is STALLED: %s", inst.app_id, inst.instance_id, description)

    def finish(
        self,
        t: Transition,
        inst: Instance,
        status: Status,
        result: str | None,
        failure: pb.TaskFailureDetails | None,
        recurse: bool,
    ) -> None:
        """Make the instance terminal, tell its parent, and (for a recursive terminate) its children."""
        inst.completed, inst.status = True, status
        inst.output = result
        inst.failure = (
            failure.SerializeToString() if failure is not None and (failure.errorType or failure.errorMessage) else None
        )
        inst.updated = self.engine.clock.now()
        # daprd deletes the timers and pending events of a finished instance.
        t.tx.clear_inbox(inst.app_id, inst.instance_id)
        inst.inbox = []
        t.tx.put_instance(inst.row())
        t.then.append(lambda: self.engine.retire(inst))
        t.notify.append(inst.key)
        if inst.parent is not None:
            info = pb.ParentInstanceInfo.FromString(inst.parent)
            parent = self.engine.instances.get((info.appID, info.workflowInstance.instanceId))
            if (
                parent is not None
                and not parent.completed
                and parent.execution_id == info.workflowInstance.executionId.value
            ):
                if status == COMPLETED:
                    ev = self.engine.event(
                        childWorkflowInstanceCompleted=pb.ChildWorkflowInstanceCompletedEvent(
                            taskScheduledId=info.taskScheduledId, result=string_value(result)
                        )
                    )
                else:
                    ev = self.engine.event(
                        childWorkflowInstanceFailed=pb.ChildWorkflowInstanceFailedEvent(
                            taskScheduledId=info.taskScheduledId,
                            failureDetails=failure if failure is not None and status == FAILED else None,
                        )
                    )
                self.engine.deliver(t, parent, ev, parent.generation)
                t.wake.append(parent)
        if status == TERMINATED and recurse:
            for key in inst.children():
                child = self.engine.instances.get(key)
                if child is not None and not child.completed:
                    if child.started or child.turn is not None:
                        self.engine.deliver(
                            t,
                            child,
                            self.engine.event(executionTerminated=pb.ExecutionTerminatedEvent(recurse=True)),
                            None,
                        )
                        t.wake.append(child)
                    else:
                        t.then.append(functools.partial(self.engine.end_unstarted, child))
        log.debug("instance %s/%s finished: %s", inst.app_id, inst.instance_id, status_name(status))

    def _continue_as_new(self, t: Transition, inst: Instance, new: applier.ContinueAsNew) -> None:
        now = self.engine.clock.now()
        inst.incoming_history = new.incoming_history
        inst.generation += 1
        inst.continued_as_new = True
        inst.execution_id = uuid.uuid4().hex
        new.started.executionStarted.workflowInstance.executionId.value = inst.execution_id
        inst.input = new.input
        # The old generation's timers and results are dropped; events not tied to it stay, after the
        # new ExecutionStarted and the events the workflow carried over.
        keep = [i for i in inst.inbox if i.generation is None]
        t.tx.clear_inbox(inst.app_id, inst.instance_id)
        t.tx.clear_history(inst.app_id, inst.instance_id)
        inst.inbox, inst.history = [], []
        for ev in [new.started, *new.carryover, *(item.event for item in keep)]:
            self.engine.deliver(t, inst, ev, None)
        inst.created = inst.updated = now
        inst.status = RUNNING
        t.tx.put_instance(inst.row())
        t.notify.append(inst.key)
        t.wake.append(inst)

    def _create_child(self, t: Transition, parent: Instance, start: applier.StartChild) -> None:
        a, task_id = start.action, start.task_id
        existing = self.engine.lookup((start.target_app, a.instanceId))
        if existing is not None and not existing.completed:
            info = pb.ParentInstanceInfo.FromString(existing.parent) if existing.parent else None
            if (
                info is not None
                and info.workflowInstance.instanceId == parent.instance_id
                and info.appID == parent.app_id
                and info.taskScheduledId == task_id
            ):
                return  # the same parent asked again (a repeated turn): nothing to do
            fail = self.engine.event(
                childWorkflowInstanceFailed=pb.ChildWorkflowInstanceFailedEvent(
                    taskScheduledId=task_id,
                    failureDetails=pb.TaskFailureDetails(
                        errorType="WorkflowInstanceAlreadyExists",
                        errorMessage=f"an active workflow with ID '{a.instanceId}' already exists",
                    ),
                )
            )
            self.engine.deliver(t, parent, fail, parent.generation)
            return
        info = pb.ParentInstanceInfo(
            taskScheduledId=task_id,
            name=string_value(parent.name),
            workflowInstance=pb.WorkflowInstance(
                instanceId=parent.instance_id, executionId=string_value(parent.execution_id)
            ),
            appID=parent.app_id,
        )
        child = self.engine.new_instance(
            t,
            start.target_app,
            a.instanceId,
            a.name,
            a.input.value if a.HasField("input") else None,
            a.version.value if a.HasField("version") else None,
            info,
            start.router,
            None,
            existing,
            start.propagated.SerializeToString() if start.propagated is not None else None,
            start.trace,
        )
        t.then.append(lambda: self._dispatch_child(child))

    def _dispatch_child(self, child: Instance) -> None:
        self.engine.notify(child.key)
        self.engine.schedule(child)
        self.engine.dispatcher.pump(child.app_id)

    def complete_activity(self, app_id: str, response: pb.ActivityResponse) -> None:
        act = self.engine.dispatcher.take_activity(app_id, response)
        if act is None:
            log.debug(
                "dropping a duplicate or unknown activity completion for %s #%d", response.instanceId, response.taskId
            )
            return
        with self.engine.transition() as t:
            t.tx.delete_activity(act.id)
            caller = self.engine.instances.get((act.source_app, act.instance_id))
            if caller is None or caller.completed or caller.generation != act.generation:
                return
            scheduled = pb.TaskRouter(sourceAppID=act.source_app, targetAppID=act.target_app)
            if response.HasField("failureDetails"):
                ev = self.engine.event(
                    router=scheduled,
                    taskFailed=pb.TaskFailedEvent(
                        taskScheduledId=act.task_id,
                        failureDetails=response.failureDetails,
                        taskExecutionId=act.request.taskExecutionId,
                    ),
                )
            else:
                ev = self.engine.event(
                    router=scheduled,
                    taskCompleted=pb.TaskCompletedEvent(
                        taskScheduledId=act.task_id,
                        result=response.result if response.HasField("result") else None,
                        taskExecutionId=act.request.taskExecutionId,
                    ),
                )
            self.engine.deliver(t, caller, ev, act.generation)
            t.wake.append(caller)
