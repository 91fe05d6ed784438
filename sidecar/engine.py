"""The workflow engine: the instances, the client API on them, and the transitions that worker answers make.

It follows daprd's engine (dapr/dapr ``pkg/runtime/wfengine`` on dapr/durabletask-go): one turn per instance
at a time; the history grows by past + new + one event per action, in action order; activities and child
workflows run on the app named by the action's router and their results come back to the caller's app.
The parts: ``applier`` works out what a turn's actions produce, ``dispatcher`` hands work to the workers,
``timers`` wakes instances, ``store`` keeps it all. Every change goes through ``_transition``: the changes are
written in one transaction, and only after it commits is anything sent, a waiter woken or work dispatched.
All of it runs on one asyncio loop, so there are no locks.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import logging
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

from dapr.ext.workflow._durabletask.internal import protos as pb

from . import applier
from .access_policy import AccessPolicies
from .dispatcher import Dispatcher, WorkerStream
from .model import (
    COMPLETED, FAILED, RUNNING, TERMINATED, Activity, InboxItem, Instance, Key, S, event, seconds, string_value,
    timestamp,
)
from .retention import RetentionPolicy
from .store import Store, Tx
from .timers import Clock, LoopClock, Timers

log = logging.getLogger("sidecar.engine")

# How many finished instances stay in memory after they finish, for the reads that usually follow (the caller
# waiting for the outcome, a status query); the others are read from the state file when asked for.
FINISHED_IN_MEMORY = 128


class Transition:
    """One engine transition: the writes (``tx``) and what to do once they are committed."""

    def __init__(self, tx: Tx) -> None:
        self.tx = tx
        self.then: list[Callable[[], None]] = []  # run first, in order
        self.notify: list[Key] = []  # waiters on these instances are woken
        self.wake: list[Instance] = []  # these instances get a turn or a timer, if they are due one


class Engine:
    def __init__(self, store: Store, clock: Clock | None = None) -> None:
        self.store = store
        self.clock = clock or LoopClock()
        self.instances: dict[Key, Instance] = {}  # the live ones: not finished
        # The most recently finished, so that the reads that follow a finish need not go to the file.
        self._finished: collections.OrderedDict[Key, Instance] = collections.OrderedDict()
        self.apps: frozenset[str] = frozenset()
        self.policies: AccessPolicies | None = None  # WorkflowAccessPolicy resources, enforced on cross-app work
        self.dispatcher = Dispatcher(self.instances, self.clock, boot=uuid.uuid4().hex[:8])
        self.timers = Timers(self.clock, self._on_due)
        self._waiters: dict[Key, list[asyncio.Event]] = collections.defaultdict(list)

    # ------------------------------------------------------------------ lifecycle

    @classmethod
    async def open(cls, path: Path, clock: Clock | None = None) -> Engine:
        store = Store(path)
        store.open()
        engine = cls(store, clock)
        try:
            engine._recover()
        except Exception:
            store.close()
            raise
        return engine

    def _recover(self) -> None:
        data = self.store.load()
        for row in data.instances:
            inst = Instance.from_row(row)
            self.instances[inst.key] = inst
        for app_id, instance_id, _seq, blob in data.history:
            self.instances[(app_id, instance_id)].history.append(pb.HistoryEvent.FromString(blob))
        for row_id, app_id, instance_id, gen, visible_at, blob in data.inbox:
            owner = self.instances.get((app_id, instance_id))
            if owner is not None:
                owner.inbox.append(InboxItem(row_id, gen, visible_at, pb.HistoryEvent.FromString(blob)))
        for row_id, target, source, instance_id, gen, task_id, blob in data.activities:
            request = pb.ActivityRequest.FromString(blob)
            self.dispatcher.enqueue_activity(Activity(row_id, target, source, instance_id, gen, task_id, request))
        for inst in self.instances.values():
            if inst.stalled and not inst.completed:
                self.dispatcher.hold(inst.key)
            self._schedule(inst)
        if self.instances or self.dispatcher.activities:
            log.info("recovered %d instances and %d queued activities", len(self.instances), len(self.dispatcher.activities))

    def register_app(self, app_id: str) -> None:
        self.apps = self.apps | {app_id}

    async def close(self) -> None:
        self.dispatcher.close()
        self.store.close()

    def connect(self, app_id: str) -> WorkerStream:
        return self.dispatcher.connect(app_id)

    def disconnect(self, stream: WorkerStream) -> None:
        self.dispatcher.disconnect(stream)

    # ------------------------------------------------------------------ transitions

    @contextlib.contextmanager
    def transition(self) -> Iterator[Transition]:
        """Write what the block records in one transaction, then (and only then) act on it."""
        t = Transition(self.store.transaction())
        yield t
        t.tx.commit()
        for fn in t.then:
            fn()
        for key in t.notify:
            self._notify(key)
        for inst in t.wake:
            self._schedule(inst)
            self.dispatcher.pump(inst.app_id)

    def _schedule(self, inst: Instance) -> None:
        """Make the instance ready now if its inbox has visible events, and arm a timer for later ones."""
        if inst.completed:
            return
        now = self.clock.now()
        later = [i.visible_at for i in inst.inbox if i.visible_at > now]
        if any(i.visible_at <= now for i in inst.inbox):
            self.dispatcher.mark_ready(inst.key)
        if later:
            self.timers.arm(inst.key, min(later))

    def _on_due(self, key: Key) -> None:
        inst = self.instances.get(key)
        if inst is None or self.dispatcher.closed:
            return
        self._schedule(inst)
        self.dispatcher.pump(inst.app_id)

    def _deliver(self, t: Transition, inst: Instance, ev: pb.HistoryEvent, generation: int | None,
                 visible_at: float | None = None) -> None:
        item = InboxItem(self.store.new_id(), generation, visible_at or self.clock.now(), ev)
        t.tx.add_inbox(item.id, inst.app_id, inst.instance_id, generation, item.visible_at, ev.SerializeToString())
        inst.inbox.append(item)

    def lookup(self, key: Key) -> Instance | None:
        """The instance, live or finished (a finished one read back from the state file when it is not among
        the last few kept in memory), or None."""
        inst = self.instances.get(key) or self._finished.get(key)
        if inst is None:
            found = self.store.load_instance(*key)
            if found is None:
                return None
            row, history = found
            inst = Instance.from_row(row)
            inst.history = [pb.HistoryEvent.FromString(e) for e in history]
            self._keep_finished(inst)
        return inst

    def _keep_finished(self, inst: Instance) -> None:
        self._finished[inst.key] = inst
        self._finished.move_to_end(inst.key)
        while len(self._finished) > FINISHED_IN_MEMORY:
            self._finished.popitem(last=False)

    def _retire(self, inst: Instance) -> None:
        """A finished instance leaves the live set (its row and history stay in the file)."""
        if self.instances.get(inst.key) is inst:
            del self.instances[inst.key]
            self._keep_finished(inst)

    def event(self, **kwargs: object) -> pb.HistoryEvent:
        return event(self.clock.now(), **kwargs)

    # ------------------------------------------------------------------ waiting

    def _notify(self, key: Key) -> None:
        for ev in self._waiters.pop(key, []):
            ev.set()

    async def wait_for(self, app_id: str, instance_id: str, predicate: Callable[[Instance], bool]) -> Instance:
        """Wait until the instance exists and satisfies ``predicate`` (cancelled by the caller's deadline)."""
        key = (app_id, instance_id)
        while True:
            inst = self.lookup(key)
            if inst is not None and predicate(inst):
                return inst
            ev = asyncio.Event()
            self._waiters[key].append(ev)
            await ev.wait()

    # ------------------------------------------------------------------ primitives of the client API

    def new_instance(
        self, t: Transition, app_id: str, instance_id: str, name: str, input: str | None, version: str | None,
        parent: pb.ParentInstanceInfo | None, router: pb.TaskRouter, scheduled_start: float | None,
        existing: Instance | None, incoming_history: bytes | None = None, trace: pb.TraceContext | None = None,
    ) -> Instance:
        """Create (or reset a terminal) instance whose first inbox event is its ExecutionStarted; the caller
        wakes it once ``t`` has committed."""
        now = self.clock.now()
        inst = Instance(app_id, instance_id)
        inst.generation = existing.generation + 1 if existing else 0
        inst.execution_id = uuid.uuid4().hex
        inst.name, inst.input, inst.created, inst.updated = name, input, now, now
        inst.parent = parent.SerializeToString() if parent is not None else None
        inst.incoming_history = incoming_history
        started = pb.ExecutionStartedEvent(
            name=name, version=string_value(version), input=string_value(input),
            workflowInstance=pb.WorkflowInstance(instanceId=instance_id, executionId=string_value(inst.execution_id)),
            parentInstance=parent,
            scheduledStartTimestamp=timestamp(scheduled_start) if scheduled_start else None,
            parentTraceContext=trace,
        )
        if existing is not None:
            t.tx.clear_history(app_id, instance_id)
            t.tx.clear_inbox(app_id, instance_id)
        t.tx.put_instance(inst.row())
        self.instances[inst.key] = inst  # committed with the transition; nothing is sent before
        self._finished.pop(inst.key, None)
        ev = pb.HistoryEvent(eventId=-1, timestamp=timestamp(now), executionStarted=started, router=router)
        self._deliver(t, inst, ev, None, visible_at=scheduled_start or now)
        return inst

    def send(self, inst: Instance, ev: pb.HistoryEvent) -> None:
        """Put an event not tied to a generation (raised, suspend, resume, terminate) in the inbox."""
        with self.transition() as t:
            self._deliver(t, inst, ev, None)
            t.wake.append(inst)

    def end_unstarted(self, inst: Instance, output: str | None = None, recurse: bool = True) -> None:
        """Terminate an instance no worker has run: there is no workflow code to deliver the event to."""
        with self.transition() as t:
            self._finish(t, inst, TERMINATED, output, None, recurse)

    def purge_instances(self, keys: list[Key]) -> None:
        with self.transition() as t:
            for key in keys:
                t.tx.delete_instance(*key)
                t.then.append(lambda key=key: (self.instances.pop(key, None), self._finished.pop(key, None)))
                t.notify.append(key)

    def purge_expired(self, policy: RetentionPolicy, batch: int = 500) -> int:
        """Delete finished instances older than the retention policy allows, ``batch`` at a time; how many."""
        keys = self.store.finished_before(policy.cutoffs(self.clock.now()), batch)
        if keys:
            self.purge_instances(keys)
            log.info("purged %d finished instances older than their retention", len(keys))
        return len(keys)

    # ------------------------------------------------------------------ worker completions

    def complete_turn(self, app_id: str, response: pb.WorkflowResponse) -> None:
        inst = self.instances.get((app_id, response.instanceId))
        if inst is None or inst.turn is None:
            log.debug("dropping a completion for %s/%s: no turn in flight", app_id, response.instanceId)
            return
        if response.completionToken and response.completionToken != inst.turn.token:
            log.debug("dropping a stale completion for %s/%s", app_id, response.instanceId)
            return
        turn = inst.turn
        turn.stream.turns.discard(inst.key)
        inst.turn = None
        result = applier.apply_turn(inst, turn.new_events, response, now=self.clock.now(), served=self.apps,
                                    policies=self.policies)
        for kind in result.ignored:
            log.warning("app %s: ignoring unsupported action %s from the worker of %s", app_id, kind, inst.instance_id)
        if result.stall is not None:
            self._stall(inst, *result.stall)
            return
        with self.transition() as t:
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
            t.tx.append_history(app_id, inst.instance_id, len(inst.history), (e.SerializeToString() for e in result.history))
            inst.history.extend(result.history)
            inst.updated = seconds(inst.history[-1].timestamp)
            if result.completion is not None:
                c = result.completion
                self._finish(t, inst, c.status, c.result, c.failure, c.recurse)
                return
            inst.status = inst.derive_status()
            t.tx.put_instance(inst.row())
            t.notify.append(inst.key)
            t.wake.append(inst)

    def _apply_effect(self, t: Transition, inst: Instance, effect: applier.Effect) -> None:
        if isinstance(effect, applier.Deliver):
            if effect.error is not None:
                log.error("app %s: workflow %s: %s", inst.app_id, inst.instance_id, effect.error)
            self._deliver(t, inst, effect.event, inst.generation, visible_at=effect.visible_at)
        elif isinstance(effect, applier.ScheduleActivity):
            act = Activity(self.store.new_id(), effect.target_app, inst.app_id, inst.instance_id, inst.generation,
                           effect.task_id, effect.request)
            t.tx.add_activity(act.id, act.target_app, act.source_app, act.instance_id, act.generation, act.task_id,
                              act.request.SerializeToString())
            t.then.append(lambda: self._dispatch_activity(act))
        else:
            self._create_child(t, inst, effect)

    def _dispatch_activity(self, act: Activity) -> None:
        self.dispatcher.enqueue_activity(act)
        self.dispatcher.pump(act.target_app)

    def _stall(self, inst: Instance, reason: int, description: str) -> None:
        """STALLED: nothing of the turn is kept (its events stay in the inbox), an ExecutionStalled event is
        recorded unless the last one says the same, and the instance is tried again when a worker of its app
        connects, which may carry the code it needs."""
        inst.stalled = True
        inst.status = S.ORCHESTRATION_STATUS_STALLED
        self.dispatcher.hold(inst.key)
        with self.transition() as t:
            last = inst.history[-1] if inst.history else None
            if last is None or not last.HasField("executionStalled") or last.executionStalled.description != description:
                inst.history.append(self.event(executionStalled=pb.ExecutionStalledEvent(reason=reason, description=description)))
                t.tx.append_history(inst.app_id, inst.instance_id, len(inst.history) - 1, [inst.history[-1].SerializeToString()])
                inst.updated = self.clock.now()
            t.tx.put_instance(inst.row())
            t.notify.append(inst.key)
        log.warning("app %s: workflow %s is STALLED: %s", inst.app_id, inst.instance_id, description)

    def _finish(self, t: Transition, inst: Instance, status: int, result: str | None,
                failure: pb.TaskFailureDetails | None, recurse: bool) -> None:
        """Make the instance terminal, tell its parent, and (for a recursive terminate) its children."""
        inst.completed, inst.status = True, status
        inst.output = result
        inst.failure = failure.SerializeToString() if failure is not None and (failure.errorType or failure.errorMessage) else None
        inst.updated = self.clock.now()
        # daprd deletes the timers and pending events of a finished instance.
        t.tx.clear_inbox(inst.app_id, inst.instance_id)
        inst.inbox = []
        t.tx.put_instance(inst.row())
        t.then.append(lambda: self._retire(inst))
        t.notify.append(inst.key)
        if inst.parent is not None:
            info = pb.ParentInstanceInfo.FromString(inst.parent)
            parent = self.instances.get((info.appID, info.workflowInstance.instanceId))
            if parent is not None and not parent.completed and parent.execution_id == info.workflowInstance.executionId.value:
                if status == COMPLETED:
                    ev = self.event(childWorkflowInstanceCompleted=pb.ChildWorkflowInstanceCompletedEvent(
                        taskScheduledId=info.taskScheduledId, result=string_value(result)))
                else:
                    ev = self.event(childWorkflowInstanceFailed=pb.ChildWorkflowInstanceFailedEvent(
                        taskScheduledId=info.taskScheduledId,
                        failureDetails=failure if failure is not None and status == FAILED else None))
                self._deliver(t, parent, ev, parent.generation)
                t.wake.append(parent)
        if status == TERMINATED and recurse:
            for key in inst.children():
                child = self.instances.get(key)
                if child is not None and not child.completed:
                    if child.started or child.turn is not None:
                        self._deliver(t, child, self.event(executionTerminated=pb.ExecutionTerminatedEvent(recurse=True)), None)
                        t.wake.append(child)
                    else:
                        t.then.append(lambda child=child: self.end_unstarted(child))
        log.debug("instance %s/%s finished: %s", inst.app_id, inst.instance_id, S.Name(status))

    def _continue_as_new(self, t: Transition, inst: Instance, new: applier.ContinueAsNew) -> None:
        now = self.clock.now()
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
            self._deliver(t, inst, ev, None)
        inst.created = inst.updated = now
        inst.status = RUNNING
        t.tx.put_instance(inst.row())
        t.notify.append(inst.key)
        t.wake.append(inst)

    def _create_child(self, t: Transition, parent: Instance, start: applier.StartChild) -> None:
        a, task_id = start.action, start.task_id
        existing = self.lookup((start.target_app, a.instanceId))
        if existing is not None and not existing.completed:
            info = pb.ParentInstanceInfo.FromString(existing.parent) if existing.parent else None
            if (info is not None and info.workflowInstance.instanceId == parent.instance_id
                    and info.appID == parent.app_id and info.taskScheduledId == task_id):
                return  # the same parent asked again (a repeated turn): nothing to do
            fail = self.event(childWorkflowInstanceFailed=pb.ChildWorkflowInstanceFailedEvent(
                taskScheduledId=task_id, failureDetails=pb.TaskFailureDetails(
                    errorType="WorkflowInstanceAlreadyExists",
                    errorMessage=f"an active workflow with ID '{a.instanceId}' already exists")))
            self._deliver(t, parent, fail, parent.generation)
            return
        info = pb.ParentInstanceInfo(
            taskScheduledId=task_id, name=string_value(parent.name),
            workflowInstance=pb.WorkflowInstance(instanceId=parent.instance_id, executionId=string_value(parent.execution_id)),
            appID=parent.app_id)
        child = self.new_instance(
            t, start.target_app, a.instanceId, a.name, a.input.value if a.HasField("input") else None,
            a.version.value if a.HasField("version") else None, info, start.router, None, existing,
            start.propagated.SerializeToString() if start.propagated is not None else None, start.trace)
        t.then.append(lambda: (self._notify(child.key), self._schedule(child), self.dispatcher.pump(child.app_id)))

    def complete_activity(self, app_id: str, response: pb.ActivityResponse) -> None:
        act = self.dispatcher.take_activity(app_id, response)
        if act is None:
            log.debug("dropping a duplicate or unknown activity completion for %s #%d", response.instanceId, response.taskId)
            return
        with self.transition() as t:
            t.tx.delete_activity(act.id)
            caller = self.instances.get((act.source_app, act.instance_id))
            if caller is None or caller.completed or caller.generation != act.generation:
                return
            scheduled = pb.TaskRouter(sourceAppID=act.source_app, targetAppID=act.target_app)
            if response.HasField("failureDetails"):
                ev = self.event(router=scheduled, taskFailed=pb.TaskFailedEvent(
                    taskScheduledId=act.task_id, failureDetails=response.failureDetails,
                    taskExecutionId=act.request.taskExecutionId))
            else:
                ev = self.event(router=scheduled, taskCompleted=pb.TaskCompletedEvent(
                    taskScheduledId=act.task_id, result=response.result if response.HasField("result") else None,
                    taskExecutionId=act.request.taskExecutionId))
            self._deliver(t, caller, ev, act.generation)
            t.wake.append(caller)
