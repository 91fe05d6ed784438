"""The workflow engine: the instances, the client API on them, and the transitions that worker answers make.

It follows daprd's engine (dapr/dapr ``pkg/runtime/wfengine`` on dapr/durabletask-go): one turn per instance
at a time; the history grows by past + new + one event per action, in action order; activities and child
workflows run on the app named by the action's router and their results come back to the caller's app.
The parts: ``applier`` works out what a turn's actions produce, ``dispatcher`` hands work to the workers,
``timers`` wakes instances, ``store`` keeps it all. Every change goes through ``transition``: the changes are
written in one transaction, and only after it commits is anything sent, a waiter woken or work dispatched.
All of it runs on one asyncio loop, so there are no locks.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import functools
import logging
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from dapr.ext.workflow._durabletask.internal import protos as pb

from .access_policy import AccessPolicies
from .completions import Completions
from .dispatcher import Dispatcher, WorkerStream
from .model import (
    TERMINATED,
    Activity,
    InboxItem,
    Instance,
    Key,
    event,
    string_value,
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
        self.completions = Completions(self)
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
            self.schedule(inst)
        if self.instances or self.dispatcher.activities:
            log.info(
                "recovered %d instances and %d queued activities", len(self.instances), len(self.dispatcher.activities)
            )

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
            self.notify(key)
        for inst in t.wake:
            self.schedule(inst)
            self.dispatcher.pump(inst.app_id)

    def schedule(self, inst: Instance) -> None:
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
        self.schedule(inst)
        self.dispatcher.pump(inst.app_id)

    def deliver(
        self,
        t: Transition,
        inst: Instance,
        ev: pb.HistoryEvent,
        generation: int | None,
        visible_at: float | None = None,
    ) -> None:
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

    def retire(self, inst: Instance) -> None:
        """A finished instance leaves the live set (its row and history stay in the file)."""
        if self.instances.get(inst.key) is inst:
            del self.instances[inst.key]
            self._keep_finished(inst)

    def event(self, **kwargs: Any) -> pb.HistoryEvent:
        """A history event tied to no action, stamped with the engine's clock."""
        return event(self.clock.now(), **kwargs)

    # ------------------------------------------------------------------ waiting

    def notify(self, key: Key) -> None:
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
        self,
        t: Transition,
        app_id: str,
        instance_id: str,
        name: str,
        input: str | None,
        version: str | None,
        parent: pb.ParentInstanceInfo | None,
        router: pb.TaskRouter,
        scheduled_start: float | None,
        existing: Instance | None,
        incoming_history: bytes | None = None,
        trace: pb.TraceContext | None = None,
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
            name=name,
            version=string_value(version),
            input=string_value(input),
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
        ev = event(now, router=router, executionStarted=started)
        self.deliver(t, inst, ev, None, visible_at=scheduled_start or now)
        return inst

    def send(self, inst: Instance, ev: pb.HistoryEvent) -> None:
        """Put an event not tied to a generation (raised, suspend, resume, terminate) in the inbox."""
        with self.transition() as t:
            self.deliver(t, inst, ev, None)
            t.wake.append(inst)

    def end_unstarted(self, inst: Instance, output: str | None = None, recurse: bool = True) -> None:
        """Terminate an instance no worker has run: there is no workflow code to deliver the event to."""
        with self.transition() as t:
            self.completions.finish(t, inst, TERMINATED, output, None, recurse)

    def purge_instances(self, keys: list[Key]) -> None:
        with self.transition() as t:
            for key in keys:
                t.tx.delete_instance(*key)
                t.then.append(functools.partial(self._forget, key))
                t.notify.append(key)

    def _forget(self, key: Key) -> None:
        self.instances.pop(key, None)
        self._finished.pop(key, None)

    def purge_expired(self, policy: RetentionPolicy, batch: int = 500) -> int:
        """Delete finished instances older than the retention policy allows, ``batch`` at a time; how many."""
        keys = self.store.finished_before(policy.cutoffs(self.clock.now()), batch)
        if keys:
            self.purge_instances(keys)
            log.info("purged %d finished instances older than their retention", len(keys))
        return len(keys)

    # ------------------------------------------------------------------ worker answers (``completions``)

    def complete_turn(self, app_id: str, response: pb.WorkflowResponse) -> None:
        self.completions.complete_turn(app_id, response)

    def complete_activity(self, app_id: str, response: pb.ActivityResponse) -> None:
        self.completions.complete_activity(app_id, response)
