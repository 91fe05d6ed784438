"""The workflow engine: instances, their histories and inboxes, the activity queues, timers, and the
work-item streams of each app's workers.

It follows daprd's engine (dapr/dapr ``pkg/runtime/wfengine`` on dapr/durabletask-go): one turn per
instance at a time; a turn's new events are ``WorkflowStarted`` then the inbox in arrival order; the
history grows by past + new + one event per action, in action order; activities and child workflows
run on the app named by the action's router and their results come back to the caller's app. All of
it runs on one asyncio loop, so there are no locks; every transition is committed to the store before
anything is acknowledged or dispatched.
"""

from __future__ import annotations

import asyncio
import collections
import itertools
import logging
import time
import uuid
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Callable

from google.protobuf import timestamp_pb2, wrappers_pb2

from dapr.ext.workflow._durabletask.internal import protos as pb

from .store import Store

log = logging.getLogger("sidecar.engine")

S = pb.OrchestrationStatus
RUNNING = S.ORCHESTRATION_STATUS_RUNNING
COMPLETED = S.ORCHESTRATION_STATUS_COMPLETED
CONTINUED_AS_NEW = S.ORCHESTRATION_STATUS_CONTINUED_AS_NEW
FAILED = S.ORCHESTRATION_STATUS_FAILED
CANCELED = S.ORCHESTRATION_STATUS_CANCELED
TERMINATED = S.ORCHESTRATION_STATUS_TERMINATED
PENDING = S.ORCHESTRATION_STATUS_PENDING
SUSPENDED = S.ORCHESTRATION_STATUS_SUSPENDED
STALLED = S.ORCHESTRATION_STATUS_STALLED
TERMINAL = frozenset({COMPLETED, FAILED, CANCELED, TERMINATED})

# fireAt of the SDK's "never" timer (the optional timer of an indefinite wait_for_external_event).
_SENTINEL_SECONDS = 253402300799
_EPOCH_ZERO = datetime(1, 1, 1, tzinfo=timezone.utc)
# Timers further away than this are re-armed in steps (asyncio's call_later wants sane delays).
_MAX_ARM = 3600.0


def _history_patches(history: list[pb.HistoryEvent]) -> list[str]:
    """Every patch the history's WorkflowStarted events recorded, in order (each records only its new ones)."""
    return [p for e in history if e.HasField("workflowStarted") for p in e.workflowStarted.version.patches]


def _compact_patches(version: pb.WorkflowVersion, history: list[pb.HistoryEvent]) -> pb.WorkflowVersion:
    """The version to record for a turn, as daprd records it: of the patches the turn reports, only those not
    already in the history (counted, so a patch reported twice is kept once more than recorded)."""
    if not version.patches:
        return version
    seen = collections.Counter(_history_patches(history))
    new = []
    for patch in version.patches:
        if seen[patch]:
            seen[patch] -= 1
        else:
            new.append(patch)
    # daprd replaces the whole version, its name included, by the new patches alone.
    return pb.WorkflowVersion(patches=new) if new else pb.WorkflowVersion()


class EngineError(Exception):
    """A request the engine refuses. ``code`` is a ``grpc.StatusCode`` name, ``message`` is daprd's text."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


def _no_instance() -> EngineError:
    # daprd returns durabletask-go's api.ErrInstanceNotFound as a plain error, which gRPC sends as UNKNOWN.
    return EngineError("UNKNOWN", "no such instance exists")


def _ts(t: float) -> timestamp_pb2.Timestamp:
    ts = timestamp_pb2.Timestamp()
    ts.FromNanoseconds(int(t * 1e9))
    return ts


def _sv(value: str | None) -> wrappers_pb2.StringValue | None:
    return None if value is None else wrappers_pb2.StringValue(value=value)


def _event(**kwargs) -> pb.HistoryEvent:
    return pb.HistoryEvent(eventId=-1, timestamp=_ts(time.time()), **kwargs)


@dataclass
class InboxItem:
    id: int
    generation: int | None  # None: not tied to one execution (raised events, suspend, terminate, ...)
    visible_at: float
    event: pb.HistoryEvent


@dataclass
class Activity:
    id: int
    target_app: str
    source_app: str
    instance_id: str
    generation: int
    task_id: int
    request: pb.ActivityRequest
    stream: "WorkerStream | None" = None


@dataclass
class Turn:
    token: str
    stream: "WorkerStream"
    inbox_ids: list[int]
    new_events: list[pb.HistoryEvent]


@dataclass
class Instance:
    app_id: str
    instance_id: str
    name: str = ""
    status: int = PENDING
    generation: int = 0
    execution_id: str = ""
    created: float = 0.0
    updated: float = 0.0
    input: str | None = None
    output: str | None = None
    custom_status: str | None = None
    failure: bytes | None = None
    parent: bytes | None = None
    started: bool = False
    suspended: bool = False
    stalled: bool = False
    completed: bool = False
    incoming_history: bytes | None = None  # a PropagatedHistory from the parent, sent with every turn
    seq: int = 0  # creation order (kept when the ID is reused), for ListInstanceIDs and its continuation token
    # Set by a continue-as-new until the new generation's first turn: daprd runs that turn in the same work
    # item and records its WorkflowStarted with the action's router. Not persisted: after a restart in between,
    # that one event lacks the router.
    continued_as_new: bool = False
    history: list[pb.HistoryEvent] = field(default_factory=list)
    inbox: list[InboxItem] = field(default_factory=list)
    turn: Turn | None = None

    @property
    def key(self) -> tuple[str, str]:
        return (self.app_id, self.instance_id)

    def row(self) -> dict:
        return {
            "app_id": self.app_id, "instance_id": self.instance_id, "name": self.name, "status": self.status,
            "generation": self.generation, "execution_id": self.execution_id, "created": self.created,
            "updated": self.updated, "input": self.input, "output": self.output,
            "custom_status": self.custom_status, "failure": self.failure, "parent": self.parent,
            "started": int(self.started), "suspended": int(self.suspended), "stalled": int(self.stalled),
            "completed": int(self.completed), "incoming_history": self.incoming_history,
        }

    def derive_status(self) -> int:
        if self.completed:
            return self.status
        if not self.started:
            return PENDING
        if self.stalled:
            return STALLED
        if self.suspended:
            return SUSPENDED
        return RUNNING


class WorkerStream:
    """One open GetWorkItems stream: the work items handed to it and not yet completed."""

    _ids = itertools.count(1)

    def __init__(self, app_id: str) -> None:
        self.id = next(self._ids)
        self.app_id = app_id
        self.queue: asyncio.Queue[pb.WorkItem] = asyncio.Queue()
        self.turns: set[tuple[str, str]] = set()
        self.activities: set[int] = set()
        self.closed = False

    @property
    def load(self) -> int:
        return len(self.turns) + len(self.activities)


class Engine:
    def __init__(self, store: Store) -> None:
        self.store = store
        self.instances: dict[tuple[str, str], Instance] = {}
        self.activities: dict[int, Activity] = {}
        self.activity_queue: dict[str, collections.deque[int]] = collections.defaultdict(collections.deque)
        self.ready: dict[str, dict[tuple[str, str], None]] = collections.defaultdict(dict)
        self.streams: dict[str, list[WorkerStream]] = collections.defaultdict(list)
        self.apps: set[str] = set()
        self._rr = itertools.count()
        self._boot = uuid.uuid4().hex[:8]
        self._tokens = itertools.count(1)
        self._seqs = itertools.count(1)
        self._waiters: dict[tuple[str, str], list[asyncio.Event]] = collections.defaultdict(list)
        self._loop = asyncio.get_running_loop()
        self._closed = False
        self._held: set[tuple[str, str]] = set()  # STALLED instances, held until a new worker connects

    # ------------------------------------------------------------------ lifecycle

    @classmethod
    async def open(cls, path: Path) -> "Engine":
        store = Store(path)
        store.open()
        engine = cls(store)
        try:
            engine._recover()
        except Exception:
            store.close()
            raise
        return engine

    def _recover(self) -> None:
        data = self.store.load()
        for row in data.instances:
            inst = Instance(**{k: row[k] for k in row})
            for flag in ("started", "suspended", "stalled", "completed"):
                setattr(inst, flag, bool(row[flag]))
            inst.seq = next(self._seqs)
            self.instances[inst.key] = inst
        for app_id, instance_id, _seq, blob in data.history:
            self.instances[(app_id, instance_id)].history.append(pb.HistoryEvent.FromString(blob))
        for row_id, app_id, instance_id, gen, visible_at, blob in data.inbox:
            inst = self.instances.get((app_id, instance_id))
            if inst is not None:
                inst.inbox.append(InboxItem(row_id, gen, visible_at, pb.HistoryEvent.FromString(blob)))
        for row_id, target, source, instance_id, gen, task_id, blob in data.activities:
            self.activities[row_id] = Activity(row_id, target, source, instance_id, gen, task_id, pb.ActivityRequest.FromString(blob))
            self.activity_queue[target].append(row_id)
        for inst in self.instances.values():
            if inst.stalled and not inst.completed:
                self._held.add(inst.key)
            self._schedule(inst)
        if self.instances or self.activities:
            log.info("recovered %d instances and %d queued activities", len(self.instances), len(self.activities))

    def register_app(self, app_id: str) -> None:
        self.apps.add(app_id)

    async def close(self) -> None:
        self._closed = True
        for streams in self.streams.values():
            for s in streams:
                s.closed = True
        self.store.close()

    # ------------------------------------------------------------------ worker streams

    def connect(self, app_id: str) -> WorkerStream:
        stream = WorkerStream(app_id)
        self.streams[app_id].append(stream)
        log.info("app %s: worker stream %d connected (%d open)", app_id, stream.id, len(self.streams[app_id]))
        # A stalled instance (its workflow version was not available) is tried again on a new worker.
        for key in [k for k in self._held if k[0] == app_id]:
            self._held.discard(key)
            inst = self.instances.get(key)
            if inst is not None:
                self._mark_ready(inst)
        self._pump(app_id)
        return stream

    def disconnect(self, stream: WorkerStream) -> None:
        if stream.closed and stream not in self.streams.get(stream.app_id, []):
            return
        stream.closed = True
        if stream in self.streams[stream.app_id]:
            self.streams[stream.app_id].remove(stream)
        # At-least-once: whatever the stream held and did not complete is delivered again.
        for key in list(stream.turns):
            inst = self.instances.get(key)
            if inst is not None and inst.turn is not None and inst.turn.stream is stream:
                inst.turn = None
                self._mark_ready(inst)
        requeue = [a for a in stream.activities if a in self.activities]
        for act_id in sorted(requeue, reverse=True):
            self.activities[act_id].stream = None
            self.activity_queue[stream.app_id].appendleft(act_id)
        log.info(
            "app %s: worker stream %d closed; %d turns and %d activities will be delivered again",
            stream.app_id, stream.id, len(stream.turns), len(requeue),
        )
        stream.turns.clear()
        stream.activities.clear()
        self._pump(stream.app_id)

    def _pick_stream(self, app_id: str) -> WorkerStream | None:
        streams = self.streams.get(app_id)
        if not streams:
            return None
        n = next(self._rr)
        return min(streams, key=lambda s: (s.load, (s.id + n) % len(streams)))

    def _pump(self, app_id: str) -> None:
        """Hand every piece of ready work of ``app_id`` to one of its streams."""
        if self._closed or not self.streams.get(app_id):
            return
        ready = self.ready[app_id]
        while ready:
            key = next(iter(ready))
            del ready[key]
            inst = self.instances.get(key)
            if inst is not None and self._runnable(inst):
                self._dispatch_turn(inst, self._pick_stream(app_id))
        queue = self.activity_queue[app_id]
        while queue:
            act = self.activities.get(queue.popleft())
            if act is None or act.stream is not None:
                continue
            stream = self._pick_stream(app_id)
            act.stream = stream
            stream.activities.add(act.id)
            stream.queue.put_nowait(pb.WorkItem(activityRequest=act.request, completionToken=f"{self._boot}:a{act.id}"))

    def _runnable(self, inst: Instance) -> bool:
        if inst.completed or inst.turn is not None or inst.key in self._held:
            return False
        now = time.time()
        if not inst.started:
            # The first turn must begin with ExecutionStarted: events raised before a scheduled start
            # wait for it, and the instance stays PENDING until then.
            return any(item.visible_at <= now and item.event.HasField("executionStarted") for item in inst.inbox)
        return any(item.visible_at <= now for item in inst.inbox)

    def _mark_ready(self, inst: Instance) -> None:
        self.ready[inst.app_id][inst.key] = None

    def _schedule(self, inst: Instance) -> None:
        """Make the instance ready now if its inbox has visible events, and arm a timer for later ones."""
        if inst.completed:
            return
        now = time.time()
        later = [i.visible_at for i in inst.inbox if i.visible_at > now]
        if any(i.visible_at <= now for i in inst.inbox):
            self._mark_ready(inst)
        if later:
            delay = min(min(later) - now, _MAX_ARM)
            self._loop.call_later(max(delay, 0.0) + 0.001, self._on_due, inst.key)

    def _on_due(self, key: tuple[str, str]) -> None:
        inst = self.instances.get(key)
        if inst is None or self._closed:
            return
        self._schedule(inst)
        self._pump(inst.app_id)

    def _dispatch_turn(self, inst: Instance, stream: WorkerStream) -> None:
        now = time.time()
        visible = [i for i in inst.inbox if i.visible_at <= now]
        started = pb.HistoryEvent(eventId=-1, timestamp=_ts(now), workflowStarted=pb.WorkflowStartedEvent())
        if inst.continued_as_new and not inst.history:
            started.router.sourceAppID = inst.app_id
        new_events = [started] + [i.event for i in visible]
        token = f"{self._boot}:w{next(self._tokens)}"
        inst.turn = Turn(token, stream, [i.id for i in visible], new_events)
        stream.turns.add(inst.key)
        request = pb.WorkflowRequest(instanceId=inst.instance_id, pastEvents=inst.history, newEvents=new_events)
        if inst.incoming_history is not None:
            request.propagatedHistory.ParseFromString(inst.incoming_history)
        stream.queue.put_nowait(pb.WorkItem(workflowRequest=request, completionToken=token))

    # ------------------------------------------------------------------ waiting

    def _notify(self, key: tuple[str, str]) -> None:
        for ev in self._waiters.pop(key, []):
            ev.set()

    async def wait_for(self, app_id: str, instance_id: str, predicate: Callable[[Instance], bool]) -> Instance:
        """Wait until the instance exists and satisfies ``predicate`` (cancelled by the caller's deadline)."""
        key = (app_id, instance_id)
        while True:
            inst = self.instances.get(key)
            if inst is not None and predicate(inst):
                return inst
            ev = asyncio.Event()
            self._waiters[key].append(ev)
            await ev.wait()

    # ------------------------------------------------------------------ client API

    def get(self, app_id: str, instance_id: str) -> Instance | None:
        return self.instances.get((app_id, instance_id))

    def list_ids(self, app_id: str, page_size: int = 0, token: str = "") -> tuple[list[str], str | None]:
        """The app's instance IDs in creation order, a page at a time as daprd pages them: after the instance
        the token names (its creation number), ``page_size`` of them (0: all), and a token only when more follow."""
        after = 0
        if token:
            try:
                after = int(token)
            except ValueError:
                raise EngineError("UNKNOWN", f'invalid continue token: strconv.ParseInt: parsing "{token}": invalid syntax') from None
        found = sorted((i for i in self.instances.values() if i.app_id == app_id and i.seq > after), key=lambda i: i.seq)
        if page_size and len(found) > page_size:
            return [i.instance_id for i in found[:page_size]], str(found[page_size - 1].seq)
        return [i.instance_id for i in found], None

    async def start(
        self, app_id: str, instance_id: str, name: str, input: str | None = None,
        scheduled_start: float | None = None, version: str | None = None, wait: bool = True,
    ) -> str:
        if not name:
            raise EngineError("INVALID_ARGUMENT", "workflow name is required")
        if not instance_id:
            raise EngineError("INVALID_ARGUMENT", "instance ID is required")
        existing = self.instances.get((app_id, instance_id))
        if existing is not None and not existing.completed:
            raise EngineError("ALREADY_EXISTS", f"an active workflow with ID '{instance_id}' already exists")
        tx = self.store.transaction()
        inst = self._new_instance(app_id, instance_id, name, input, version, None, pb.TaskRouter(sourceAppID=app_id),
                                  scheduled_start, existing, tx)
        tx.commit()
        self._activate(inst)
        if wait and scheduled_start is None:
            await self.wait_for(app_id, instance_id, lambda i: i.derive_status() != PENDING)
        return instance_id

    def _new_instance(
        self, app_id: str, instance_id: str, name: str, input: str | None, version: str | None,
        parent: pb.ParentInstanceInfo | None, router: pb.TaskRouter, scheduled_start: float | None,
        existing: Instance | None, tx, incoming_history: bytes | None = None,
    ) -> Instance:
        """Create (or reset a terminal) instance whose first inbox event is its ExecutionStarted, in ``tx``.
        The caller commits, then calls ``_activate``."""
        now = time.time()
        inst = Instance(app_id, instance_id)
        inst.seq = existing.seq if existing else next(self._seqs)
        inst.generation = existing.generation + 1 if existing else 0
        inst.execution_id = uuid.uuid4().hex
        inst.name, inst.input, inst.created, inst.updated = name, input, now, now
        inst.parent = parent.SerializeToString() if parent is not None else None
        inst.incoming_history = incoming_history
        started = pb.ExecutionStartedEvent(
            name=name, version=_sv(version), input=_sv(input),
            workflowInstance=pb.WorkflowInstance(instanceId=instance_id, executionId=_sv(inst.execution_id)),
            parentInstance=parent,
            scheduledStartTimestamp=_ts(scheduled_start) if scheduled_start else None,
        )
        if existing is not None:
            tx.clear_history(app_id, instance_id)
            tx.clear_inbox(app_id, instance_id)
        tx.put_instance(inst.row())
        self.instances[inst.key] = inst  # _deliver needs it; the caller commits right after
        event = pb.HistoryEvent(eventId=-1, timestamp=_ts(now), executionStarted=started, router=router)
        self._deliver(app_id, instance_id, event, None, tx, visible_at=scheduled_start or now)
        return inst

    def _deliver(self, app_id: str, instance_id: str, event: pb.HistoryEvent, generation: int | None, tx, visible_at: float | None = None) -> InboxItem:
        inst = self.instances[(app_id, instance_id)]
        item = InboxItem(self.store.new_id(), generation, visible_at or time.time(), event)
        tx.add_inbox(item.id, app_id, instance_id, generation, item.visible_at, event.SerializeToString())
        inst.inbox.append(item)
        return item

    def _after_delivery(self, inst: Instance) -> None:
        self._schedule(inst)
        self._pump(inst.app_id)

    def _require(self, app_id: str, instance_id: str) -> Instance:
        if not instance_id:
            raise EngineError("INVALID_ARGUMENT", "instance ID is required")
        inst = self.instances.get((app_id, instance_id))
        if inst is None:
            raise _no_instance()
        return inst

    async def raise_event(self, app_id: str, instance_id: str, name: str, data: str | None) -> None:
        if not name:
            raise EngineError("INVALID_ARGUMENT", "event name is required")
        inst = self._require(app_id, instance_id)
        if inst.completed:
            return  # daprd drops events raised to a completed instance
        if inst.stalled:
            raise EngineError("UNKNOWN", f"failed to invoke method for workflow '{instance_id}': actor is stalled")
        tx = self.store.transaction()
        self._deliver(app_id, instance_id, _event(eventRaised=pb.EventRaisedEvent(name=name, input=_sv(data))), None, tx)
        tx.commit()
        self._after_delivery(inst)

    async def terminate(self, app_id: str, instance_id: str, output: str | None, recursive: bool, wait: bool = True) -> None:
        inst = self._require(app_id, instance_id)
        if inst.completed:
            return
        if not inst.started and inst.turn is None:
            # Not started yet (scheduled for later, or no worker has run it): there is no workflow code
            # to deliver the event to, so the engine ends it itself.
            self._finish(inst, TERMINATED, output, None, [], recursive)
            return
        event = _event(executionTerminated=pb.ExecutionTerminatedEvent(input=_sv(output), recurse=recursive))
        tx = self.store.transaction()
        self._deliver(app_id, instance_id, event, None, tx)
        tx.commit()
        self._after_delivery(inst)
        if wait:
            await self.wait_for(app_id, instance_id, lambda i: i.completed)

    async def suspend(self, app_id: str, instance_id: str, reason: str | None, wait: bool = True) -> None:
        inst = self._require(app_id, instance_id)
        if inst.completed:
            return
        tx = self.store.transaction()
        self._deliver(app_id, instance_id, _event(executionSuspended=pb.ExecutionSuspendedEvent(input=_sv(reason))), None, tx)
        tx.commit()
        self._after_delivery(inst)
        if wait:
            await self.wait_for(app_id, instance_id, lambda i: i.completed or i.suspended)

    async def resume(self, app_id: str, instance_id: str, reason: str | None, wait: bool = True) -> None:
        inst = self._require(app_id, instance_id)
        if inst.completed:
            return
        pending_suspend = any(i.event.HasField("executionSuspended") for i in inst.inbox)
        if not inst.suspended and not pending_suspend:
            return  # an unsolicited executionResumed would fail the workflow in the SDK
        tx = self.store.transaction()
        self._deliver(app_id, instance_id, _event(executionResumed=pb.ExecutionResumedEvent(input=_sv(reason))), None, tx)
        tx.commit()
        self._after_delivery(inst)
        if wait:
            await self.wait_for(app_id, instance_id, lambda i: i.completed or (not i.suspended and not any(
                x.event.HasField("executionResumed") for x in i.inbox)))

    async def purge(self, app_id: str, instance_id: str, recursive: bool) -> int:
        try:
            inst = self._require(app_id, instance_id)
        except EngineError as exc:
            if exc.code == "UNKNOWN":
                exc.message = f"failed to fetch workflow state: {exc.message}"  # daprd's wording
            raise
        if not inst.completed:
            raise EngineError("UNKNOWN", "orchestration has not yet completed")
        keys = [inst.key]
        if recursive:
            keys = self._descendants(inst) + keys
        tx = self.store.transaction()
        purged = []
        for key in keys:
            child = self.instances.get(key)
            if child is None:
                continue
            if not child.completed:
                raise EngineError("UNKNOWN", f"orchestration has not yet completed: child {child.instance_id} on app {child.app_id}")
            tx.delete_instance(*key)
            purged.append(key)
        tx.commit()
        for key in purged:
            self.instances.pop(key, None)
            self._notify(key)
        return len(purged)

    def _children(self, inst: Instance) -> list[tuple[str, str]]:
        out = []
        for e in inst.history:
            if e.HasField("childWorkflowInstanceCreated"):
                target = e.router.targetAppID if e.router.HasField("targetAppID") else inst.app_id
                out.append((target, e.childWorkflowInstanceCreated.instanceId))
        return out

    def _descendants(self, inst: Instance) -> list[tuple[str, str]]:
        out: list[tuple[str, str]] = []
        for key in self._children(inst):
            child = self.instances.get(key)
            if child is not None and key not in out:
                out.extend(k for k in self._descendants(child) if k not in out)
                out.append(key)
        return out

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
        self._apply_turn(inst, turn, response)

    def _apply_turn(self, inst: Instance, turn: Turn, response: pb.WorkflowResponse) -> None:
        app_id = inst.app_id
        stall = self._stall_reason(inst, response)
        if stall is not None:
            self._stall(inst, *stall)
            return
        tx = self.store.transaction()
        new_events = list(turn.new_events)
        if response.HasField("version"):
            new_events[0].workflowStarted.version.CopyFrom(_compact_patches(response.version, inst.history))
            if new_events[0].workflowStarted.version == pb.WorkflowVersion():
                new_events[0].workflowStarted.ClearField("version")
        consumed = set(turn.inbox_ids)
        inst.inbox = [i for i in inst.inbox if i.id not in consumed]
        tx.delete_inbox(turn.inbox_ids)

        terminate_event = None
        for e in new_events:
            if e.HasField("executionStarted"):
                inst.name = e.executionStarted.name
                inst.created = e.timestamp.ToNanoseconds() / 1e9
            elif e.HasField("executionSuspended"):
                inst.suspended = True
            elif e.HasField("executionResumed"):
                inst.suspended = False
            elif e.HasField("executionTerminated") and terminate_event is None:
                terminate_event = e.executionTerminated
        inst.started = True
        inst.stalled = False
        inst.continued_as_new = False
        inst.custom_status = response.customStatus.value if response.HasField("customStatus") else None

        action_events: list[pb.HistoryEvent] = []
        after_commit: list[Callable[[], None]] = []
        completion: pb.CompleteWorkflowAction | None = None
        completion_id = -1
        completion_router = pb.TaskRouter(sourceAppID=app_id)
        now = time.time()
        for action in response.actions:
            router = pb.TaskRouter()
            router.CopyFrom(action.router)
            router.sourceAppID = app_id
            kind = action.WhichOneof("workflowActionType")
            if kind == "scheduleTask":
                a = action.scheduleTask
                ev = pb.HistoryEvent(eventId=action.id, timestamp=_ts(now), router=router, taskScheduled=pb.TaskScheduledEvent(
                    name=a.name, version=a.version if a.HasField("version") else None,
                    input=a.input if a.HasField("input") else None, taskExecutionId=a.taskExecutionId,
                    historyPropagationScope=a.historyPropagationScope))
                action_events.append(ev)
                target = router.targetAppID if router.HasField("targetAppID") else app_id
                request = pb.ActivityRequest(
                    name=a.name, version=ev.taskScheduled.version if a.HasField("version") else None,
                    input=a.input if a.HasField("input") else None,
                    workflowInstance=pb.WorkflowInstance(instanceId=inst.instance_id, executionId=_sv(inst.execution_id)),
                    taskId=action.id, taskExecutionId=a.taskExecutionId)
                propagated = self._propagate(inst, a.historyPropagationScope, new_events + action_events)
                if propagated is not None:
                    request.propagatedHistory.CopyFrom(propagated)
                if (unserved := self._unserved(target, inst, f"activity {a.name!r}")) is not None:
                    failed = _event(taskFailed=pb.TaskFailedEvent(taskScheduledId=action.id, failureDetails=unserved))
                    self._deliver(app_id, inst.instance_id, failed, inst.generation, tx)
                    continue
                act = Activity(self.store.new_id(), target, app_id, inst.instance_id, inst.generation, action.id, request)
                tx.add_activity(act.id, target, app_id, inst.instance_id, inst.generation, action.id, request.SerializeToString())
                after_commit.append(lambda act=act: self._enqueue_activity(act))
            elif kind == "createTimer":
                a = action.createTimer
                origin = a.WhichOneof("origin")
                created = pb.TimerCreatedEvent(fireAt=a.fireAt, name=a.name)
                if origin:
                    getattr(created, origin).CopyFrom(getattr(a, origin))
                action_events.append(pb.HistoryEvent(eventId=action.id, timestamp=_ts(now), router=router, timerCreated=created))
                if a.fireAt.seconds < _SENTINEL_SECONDS:  # the sentinel "never" timer is never armed
                    fired = pb.HistoryEvent(eventId=-1, timestamp=_ts(now), timerFired=pb.TimerFiredEvent(fireAt=a.fireAt, timerId=action.id))
                    self._deliver(app_id, inst.instance_id, fired, inst.generation, tx, visible_at=a.fireAt.ToNanoseconds() / 1e9)
            elif kind == "createChildWorkflow":
                a = action.createChildWorkflow
                action_events.append(pb.HistoryEvent(eventId=action.id, timestamp=_ts(now), router=router,
                    childWorkflowInstanceCreated=pb.ChildWorkflowInstanceCreatedEvent(
                        instanceId=a.instanceId, name=a.name, version=a.version if a.HasField("version") else None,
                        input=a.input if a.HasField("input") else None, historyPropagationScope=a.historyPropagationScope)))
                propagated = self._propagate(inst, a.historyPropagationScope, new_events + action_events)
                target = router.targetAppID if router.HasField("targetAppID") else app_id
                if (unserved := self._unserved(target, inst, f"child workflow {a.name!r} ({a.instanceId})")) is not None:
                    failed = _event(childWorkflowInstanceFailed=pb.ChildWorkflowInstanceFailedEvent(
                        taskScheduledId=action.id, failureDetails=unserved))
                    self._deliver(app_id, inst.instance_id, failed, inst.generation, tx)
                    continue
                self._create_child(inst, action.id, a, router, propagated, tx, after_commit)
            elif kind == "completeWorkflow":
                if completion is None:  # the first one wins
                    completion, completion_id, completion_router = action.completeWorkflow, action.id, router
            else:
                log.warning("app %s: ignoring unsupported action %s from the worker of %s", app_id, kind, inst.instance_id)

        if terminate_event is not None and (completion is None or completion.workflowStatus != TERMINATED):
            # daprd forces the outcome of a delivered terminate, whatever the workflow answered.
            completion = pb.CompleteWorkflowAction(workflowStatus=TERMINATED, result=terminate_event.input if terminate_event.HasField("input") else None)

        if completion is not None and completion.workflowStatus == CONTINUED_AS_NEW:
            self._continue_as_new(inst, new_events, action_events, completion, tx, after_commit)
            return

        history_start = len(inst.history)
        inst.history.extend(new_events)
        inst.history.extend(action_events)
        if completion is not None:
            ev = pb.HistoryEvent(eventId=completion_id, timestamp=_ts(now), router=completion_router, executionCompleted=pb.ExecutionCompletedEvent(
                workflowStatus=completion.workflowStatus,
                result=completion.result if completion.HasField("result") else None,
                failureDetails=completion.failureDetails if completion.HasField("failureDetails") else None))
            inst.history.append(ev)
        tx.append_history(app_id, inst.instance_id, history_start, (e.SerializeToString() for e in inst.history[history_start:]))
        inst.updated = inst.history[-1].timestamp.ToNanoseconds() / 1e9
        if completion is not None:
            result = completion.result.value if completion.HasField("result") else None
            failure = completion.failureDetails if completion.HasField("failureDetails") else None
            recurse = terminate_event.recurse if terminate_event is not None else False
            self._finish(inst, completion.workflowStatus, result, failure, after_commit, recurse, tx)
            return
        inst.status = inst.derive_status()
        tx.put_instance(inst.row())
        tx.commit()
        for fn in after_commit:
            fn()
        self._notify(inst.key)
        self._after_delivery(inst)

    def _unserved(self, target: str, caller: Instance, what: str) -> pb.TaskFailureDetails | None:
        """The failure of work for an app this sidecar does not serve, or None when it serves it. Such work
        could never run here (no worker of that app can reach this process), so instead of waiting for ever
        it fails at once as a task failure of the caller, and the log says so. daprd would retry it."""
        if not self.apps or target in self.apps:
            return None
        message = (f"{what} targets app {target!r}, which this sidecar does not serve (it serves "
                   f"{', '.join(sorted(self.apps))}); sidecars do not call each other: serve every app that "
                   f"calls another from one sidecar (python -m sidecar serve --app A=PORT --app B=PORT)")
        log.error("app %s: workflow %s: %s", caller.app_id, caller.instance_id, message)
        return pb.TaskFailureDetails(errorType="AppNotServedError", errorMessage=message)

    def _propagate(self, inst: Instance, scope: int, turn_events: list[pb.HistoryEvent]) -> pb.PropagatedHistory | None:
        """The history an action sends along, as daprd assembles it when it applies the action: for
        ``OWN_HISTORY`` one chunk of this instance's events so far (its history, then this turn's events up to
        and including the action's own); for ``LINEAGE`` the chunks this instance received first."""
        if scope == pb.HISTORY_PROPAGATION_SCOPE_NONE:
            return None
        chunks = []
        if scope == pb.HISTORY_PROPAGATION_SCOPE_LINEAGE and inst.incoming_history is not None:
            chunks.extend(pb.PropagatedHistory.FromString(inst.incoming_history).chunks)
        events = inst.history + turn_events
        name = next((e.executionStarted.name for e in events if e.HasField("executionStarted")), "")
        chunks.append(pb.PropagatedHistoryChunk(
            appId=inst.app_id, instanceId=inst.instance_id, workflowName=name,
            rawEvents=[e.SerializeToString(deterministic=True) for e in events]))
        return pb.PropagatedHistory(scope=scope, chunks=chunks)

    def _stall_reason(self, inst: Instance, response: pb.WorkflowResponse) -> tuple[int, str] | None:
        """Why this turn stalls the instance, as daprd decides it: the worker lacks the workflow's version,
        or the patches recorded in the history are not a prefix of the patches the turn reports."""
        if any(a.HasField("workflowVersionNotAvailable") for a in response.actions):
            name = next((e.workflowStarted.version.name for e in inst.history if e.HasField("workflowStarted")), "")
            return pb.VERSION_NOT_AVAILABLE, f"Version not available: {name}"
        recorded = _history_patches(inst.history)
        current = list(response.version.patches) if response.HasField("version") else []
        if recorded and current[:len(recorded)] != recorded:
            return pb.PATCH_MISMATCH, (f"Patch mismatch. History patches: [{', '.join(recorded)}], "
                                       f"current patches: [{', '.join(current)}]. ")
        return None

    def _stall(self, inst: Instance, reason: int, description: str) -> None:
        """STALLED: nothing of the turn is kept (its events stay in the inbox), an ExecutionStalled event is
        recorded unless the last one says the same, and the instance is tried again when a worker of its app
        connects, which may carry the code it needs."""
        inst.stalled = True
        inst.status = STALLED
        self._held.add(inst.key)
        tx = self.store.transaction()
        last = inst.history[-1] if inst.history else None
        if last is None or not last.HasField("executionStalled") or last.executionStalled.description != description:
            inst.history.append(_event(executionStalled=pb.ExecutionStalledEvent(reason=reason, description=description)))
            tx.append_history(inst.app_id, inst.instance_id, len(inst.history) - 1, [inst.history[-1].SerializeToString()])
            inst.updated = time.time()
        tx.put_instance(inst.row())
        tx.commit()
        self._notify(inst.key)
        log.warning("app %s: workflow %s is STALLED: %s", inst.app_id, inst.instance_id, description)

    def _finish(self, inst: Instance, status: int, result: str | None, failure: pb.TaskFailureDetails | None,
                after_commit: list[Callable[[], None]], recurse: bool, tx=None) -> None:
        """Make the instance terminal, tell its parent, and (for a recursive terminate) its children."""
        tx = tx or self.store.transaction()
        inst.completed, inst.status = True, status
        inst.output = result
        inst.failure = failure.SerializeToString() if failure is not None and (failure.errorType or failure.errorMessage) else None
        inst.updated = time.time()
        # daprd deletes the timers and pending events of a finished instance.
        tx.clear_inbox(inst.app_id, inst.instance_id)
        inst.inbox = []
        tx.put_instance(inst.row())
        touched: list[Instance] = []
        if inst.parent is not None:
            parent_info = pb.ParentInstanceInfo.FromString(inst.parent)
            parent = self.instances.get((parent_info.appID, parent_info.workflowInstance.instanceId))
            if parent is not None and not parent.completed and parent.execution_id == parent_info.workflowInstance.executionId.value:
                if status == COMPLETED:
                    ev = _event(childWorkflowInstanceCompleted=pb.ChildWorkflowInstanceCompletedEvent(
                        taskScheduledId=parent_info.taskScheduledId, result=_sv(result)))
                else:
                    ev = _event(childWorkflowInstanceFailed=pb.ChildWorkflowInstanceFailedEvent(
                        taskScheduledId=parent_info.taskScheduledId,
                        failureDetails=failure if failure is not None and status == FAILED else None))
                self._deliver(parent.app_id, parent.instance_id, ev, parent.generation, tx)
                touched.append(parent)
        if status == TERMINATED and recurse:
            for key in self._children(inst):
                child = self.instances.get(key)
                if child is not None and not child.completed:
                    if child.started or child.turn is not None:
                        self._deliver(child.app_id, child.instance_id, _event(executionTerminated=pb.ExecutionTerminatedEvent(recurse=True)), None, tx)
                        touched.append(child)
                    else:
                        after_commit.append(lambda child=child: self._finish(child, TERMINATED, None, None, [], True))
        tx.commit()
        for fn in after_commit:
            fn()
        self._notify(inst.key)
        for other in touched:
            self._after_delivery(other)
        log.debug("instance %s/%s finished: %s", inst.app_id, inst.instance_id, S.Name(status))

    def _continue_as_new(self, inst: Instance, new_events, action_events, completion: pb.CompleteWorkflowAction, tx, after_commit) -> None:
        now = time.time()
        old_started = next((e for e in inst.history + new_events if e.HasField("executionStarted")), None)
        router = old_started.router if old_started is not None else pb.TaskRouter(sourceAppID=inst.app_id)
        old = old_started.executionStarted if old_started is not None else pb.ExecutionStartedEvent(name=inst.name)
        if inst.incoming_history is not None:
            # The propagation chain goes on into the new generation, with this generation's events in it.
            received = pb.PropagatedHistory.FromString(inst.incoming_history)
            inst.incoming_history = self._propagate(inst, received.scope, new_events + action_events).SerializeToString()
        inst.generation += 1
        inst.continued_as_new = True
        inst.execution_id = uuid.uuid4().hex
        inst.input = completion.result.value if completion.HasField("result") else None
        started = pb.ExecutionStartedEvent(
            name=old.name, version=completion.newVersion if completion.HasField("newVersion") else (old.version if old.HasField("version") else None),
            input=completion.result if completion.HasField("result") else None,
            workflowInstance=pb.WorkflowInstance(instanceId=inst.instance_id, executionId=_sv(inst.execution_id)),
            parentInstance=old.parentInstance if old.HasField("parentInstance") else None)
        # The old generation's timers and results are dropped; events not tied to it stay, after the
        # new ExecutionStarted and the events the workflow carried over.
        keep = [i for i in inst.inbox if i.generation is None]
        tx.clear_inbox(inst.app_id, inst.instance_id)
        tx.clear_history(inst.app_id, inst.instance_id)
        inst.inbox, inst.history = [], []
        self._deliver(inst.app_id, inst.instance_id, pb.HistoryEvent(eventId=-1, timestamp=_ts(now), executionStarted=started, router=router), None, tx)
        for ev in completion.carryoverEvents:
            self._deliver(inst.app_id, inst.instance_id, ev, None, tx)
        for item in keep:
            self._deliver(inst.app_id, inst.instance_id, item.event, None, tx)
        # Activities scheduled in the same turn belong to the old generation: drop them.
        after_commit.clear()
        inst.created = inst.updated = now
        inst.status = RUNNING
        tx.put_instance(inst.row())
        tx.commit()
        self._notify(inst.key)
        self._after_delivery(inst)

    def _create_child(self, parent: Instance, task_id: int, a: pb.CreateChildWorkflowAction, router: pb.TaskRouter,
                      propagated: pb.PropagatedHistory | None, tx, after_commit) -> None:
        target = router.targetAppID if router.HasField("targetAppID") else parent.app_id
        existing = self.instances.get((target, a.instanceId))
        if existing is not None and not existing.completed:
            info = pb.ParentInstanceInfo.FromString(existing.parent) if existing.parent else None
            if info is not None and info.workflowInstance.instanceId == parent.instance_id and info.appID == parent.app_id and info.taskScheduledId == task_id:
                return  # the same parent asked again (a repeated turn): nothing to do
            fail = _event(childWorkflowInstanceFailed=pb.ChildWorkflowInstanceFailedEvent(
                taskScheduledId=task_id, failureDetails=pb.TaskFailureDetails(
                    errorType="WorkflowInstanceAlreadyExists",
                    errorMessage=f"an active workflow with ID '{a.instanceId}' already exists")))
            self._deliver(parent.app_id, parent.instance_id, fail, parent.generation, tx)
            return
        info = pb.ParentInstanceInfo(
            taskScheduledId=task_id, name=_sv(parent.name),
            workflowInstance=pb.WorkflowInstance(instanceId=parent.instance_id, executionId=_sv(parent.execution_id)),
            appID=parent.app_id)
        child = self._new_instance(
            target, a.instanceId, a.name, a.input.value if a.HasField("input") else None,
            a.version.value if a.HasField("version") else None, info, router, None, existing, tx,
            propagated.SerializeToString() if propagated is not None else None)
        after_commit.append(lambda: self._activate(child))

    def _activate(self, inst: Instance) -> None:
        self._notify(inst.key)
        self._after_delivery(inst)

    def _enqueue_activity(self, act: Activity) -> None:
        self.activities[act.id] = act
        self.activity_queue[act.target_app].append(act.id)
        self._pump(act.target_app)

    def complete_activity(self, app_id: str, response: pb.ActivityResponse) -> None:
        act = None
        token = response.completionToken
        if token.startswith(f"{self._boot}:a"):
            act = self.activities.get(int(token.rsplit("a", 1)[1]))
        elif token == "" or ":" in token:
            # No token of this run (a worker answering across a sidecar restart): correlate as daprd does,
            # by instance and task id.
            act = next((a for a in self.activities.values() if a.target_app == app_id and a.instance_id == response.instanceId
                        and a.task_id == response.taskId), None)
        if act is None or act.target_app != app_id or act.task_id != response.taskId:
            log.debug("dropping a duplicate or unknown activity completion for %s #%d", response.instanceId, response.taskId)
            return
        tx = self.store.transaction()
        tx.delete_activity(act.id)
        self.activities.pop(act.id, None)
        if act.stream is not None:
            act.stream.activities.discard(act.id)
        caller = self.instances.get((act.source_app, act.instance_id))
        delivered = caller is not None and not caller.completed and caller.generation == act.generation
        if delivered:
            scheduled = pb.TaskRouter(sourceAppID=act.source_app, targetAppID=act.target_app)
            if response.HasField("failureDetails"):
                ev = _event(router=scheduled, taskFailed=pb.TaskFailedEvent(
                    taskScheduledId=act.task_id, failureDetails=response.failureDetails, taskExecutionId=act.request.taskExecutionId))
            else:
                ev = _event(router=scheduled, taskCompleted=pb.TaskCompletedEvent(
                    taskScheduledId=act.task_id, result=response.result if response.HasField("result") else None,
                    taskExecutionId=act.request.taskExecutionId))
            self._deliver(caller.app_id, caller.instance_id, ev, act.generation, tx)
        tx.commit()
        if delivered:
            self._after_delivery(caller)
