"""Hands work to the apps' workers: the open ``GetWorkItems`` streams of each app, the instances ready for a
turn, the queued activities, and delivery again of whatever a closed stream held (at least once).

One turn per instance at a time; the least loaded stream of an app gets the next item (ties go round).
A turn's new events are ``WorkflowStarted`` then the visible inbox in arrival order. The dispatcher only
sends what the engine has committed; it writes nothing itself.
"""

from __future__ import annotations

import asyncio
import collections
import itertools
import logging

from dapr.ext.workflow._durabletask.internal import protos as pb

from .model import Activity, Instance, Key, Turn, timestamp
from .timers import Clock

log = logging.getLogger("sidecar.engine")


class WorkerStream:
    """One open GetWorkItems stream: the work items handed to it and not yet completed."""

    _ids = itertools.count(1)

    def __init__(self, app_id: str) -> None:
        self.id = next(self._ids)
        self.app_id = app_id
        self.queue: asyncio.Queue[pb.WorkItem] = asyncio.Queue()
        self.turns: set[Key] = set()
        self.activities: set[int] = set()
        self.closed = False

    @property
    def load(self) -> int:
        return len(self.turns) + len(self.activities)


class Dispatcher:
    def __init__(self, instances: dict[Key, Instance], clock: Clock, boot: str) -> None:
        self.instances = instances  # the engine's, read only here
        self.clock = clock
        self.boot = boot  # completion tokens name the run that issued them
        self.streams: dict[str, list[WorkerStream]] = collections.defaultdict(list)
        self.ready: dict[str, dict[Key, None]] = collections.defaultdict(dict)  # ordered sets
        self.activities: dict[int, Activity] = {}  # committed and not completed, by row id
        self.activity_queue: dict[str, collections.deque[int]] = collections.defaultdict(collections.deque)
        self.held: set[Key] = set()  # STALLED instances, held until a new worker of their app connects
        self.closed = False
        self._rr = itertools.count()
        self._tokens = itertools.count(1)

    # ------------------------------------------------------------------ streams

    def connect(self, app_id: str) -> WorkerStream:
        stream = WorkerStream(app_id)
        self.streams[app_id].append(stream)
        log.info("app %s: worker stream %d connected (%d open)", app_id, stream.id, len(self.streams[app_id]))
        # A stalled instance (its workflow version was not available) is tried again on a new worker.
        for key in [k for k in self.held if k[0] == app_id]:
            self.held.discard(key)
            if key in self.instances:
                self.mark_ready(key)
        self.pump(app_id)
        return stream

    def disconnect(self, stream: WorkerStream) -> None:
        if stream.closed and stream not in self.streams.get(stream.app_id, []):
            return
        stream.closed = True
        if stream in self.streams[stream.app_id]:
            self.streams[stream.app_id].remove(stream)
        # At least once: whatever the stream held and did not complete is delivered again.
        for key in list(stream.turns):
            inst = self.instances.get(key)
            if inst is not None and inst.turn is not None and inst.turn.stream is stream:
                inst.turn = None
                self.mark_ready(key)
        requeue = [a for a in stream.activities if a in self.activities]
        for act_id in sorted(requeue, reverse=True):
            self.activities[act_id].stream = None
            self.activity_queue[stream.app_id].appendleft(act_id)
        log.info(
            "app %s: worker stream %d closed; %d turns and %d activities will be delivered again",
            stream.app_id,
            stream.id,
            len(stream.turns),
            len(requeue),
        )
        stream.turns.clear()
        stream.activities.clear()
        self.pump(stream.app_id)

    def close(self) -> None:
        self.closed = True
        for streams in self.streams.values():
            for s in streams:
                s.closed = True

    # ------------------------------------------------------------------ work

    def mark_ready(self, key: Key) -> None:
        self.ready[key[0]][key] = None

    def hold(self, key: Key) -> None:
        self.held.add(key)

    def enqueue_activity(self, act: Activity) -> None:
        self.activities[act.id] = act
        self.activity_queue[act.target_app].append(act.id)

    def take_activity(self, app_id: str, response: pb.ActivityResponse) -> Activity | None:
        """The activity a completion is for, now out of the dispatcher; None for a duplicate or unknown one."""
        act = None
        token = response.completionToken
        if token.startswith(f"{self.boot}:a"):
            act = self.activities.get(int(token.rsplit("a", 1)[1]))
        elif token == "" or ":" in token:
            # No token of this run (a worker answering across a sidecar restart): correlate as daprd does,
            # by instance and task id.
            act = next(
                (
                    a
                    for a in self.activities.values()
                    if a.target_app == app_id and a.instance_id == response.instanceId and a.task_id == response.taskId
                ),
                None,
            )
        if act is None or act.target_app != app_id or act.task_id != response.taskId:
            return None
        self.activities.pop(act.id, None)
        if act.stream is not None:
            act.stream.activities.discard(act.id)
        return act

    def runnable(self, inst: Instance) -> bool:
        if inst.completed or inst.turn is not None or inst.key in self.held:
            return False
        now = self.clock.now()
        if not inst.started:
            # The first turn must begin with ExecutionStarted: events raised before a scheduled start
            # wait for it, and the instance stays PENDING until then.
            return any(item.visible_at <= now and item.event.HasField("executionStarted") for item in inst.inbox)
        return any(item.visible_at <= now for item in inst.inbox)

    def pump(self, app_id: str) -> None:
        """Hand every piece of ready work of ``app_id`` to one of its streams."""
        if self.closed or not self.streams.get(app_id):
            return
        ready = self.ready[app_id]
        while ready:
            key = next(iter(ready))
            del ready[key]
            inst = self.instances.get(key)
            if inst is not None and self.runnable(inst):
                self._send_turn(inst, self._pick(app_id))
        queue = self.activity_queue[app_id]
        while queue:
            act = self.activities.get(queue.popleft())
            if act is None or act.stream is not None:
                continue
            stream = self._pick(app_id)
            act.stream = stream
            stream.activities.add(act.id)
            stream.queue.put_nowait(pb.WorkItem(activityRequest=act.request, completionToken=f"{self.boot}:a{act.id}"))

    def _pick(self, app_id: str) -> WorkerStream:
        streams = self.streams[app_id]
        n = next(self._rr)
        return min(streams, key=lambda s: (s.load, (s.id + n) % len(streams)))

    def _send_turn(self, inst: Instance, stream: WorkerStream) -> None:
        now = self.clock.now()
        visible = [i for i in inst.inbox if i.visible_at <= now]
        started = pb.HistoryEvent(eventId=-1, timestamp=timestamp(now), workflowStarted=pb.WorkflowStartedEvent())
        if inst.continued_as_new and not inst.history:
            started.router.sourceAppID = inst.app_id
        new_events = [started] + [i.event for i in visible]
        token = f"{self.boot}:w{next(self._tokens)}"
        inst.turn = Turn(token, stream, [i.id for i in visible], new_events)
        stream.turns.add(inst.key)
        request = pb.WorkflowRequest(instanceId=inst.instance_id, pastEvents=inst.history, newEvents=new_events)
        if inst.incoming_history is not None:
            request.propagatedHistory.ParseFromString(inst.incoming_history)
        stream.queue.put_nowait(pb.WorkItem(workflowRequest=request, completionToken=token))
