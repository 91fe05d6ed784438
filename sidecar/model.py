"""The engine's vocabulary: workflow statuses, an instance and its inbox, a queued activity, a turn in flight,
the engine's refusals, and the protobuf helpers every part uses. Data only: no I/O, no clock, no rules
beyond what a field means."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, TypeAlias

from dapr.ext.workflow._durabletask.internal import protos as pb
from google.protobuf import timestamp_pb2, wrappers_pb2

if TYPE_CHECKING:
    from .dispatcher import WorkerStream

    # The enums' value types as the protobuf stubs declare them (at run time the values are plain ints): for
    # annotations only, so import them under TYPE_CHECKING.
    Status: TypeAlias = pb.OrchestrationStatus.ValueType
    StalledReason: TypeAlias = pb.StalledReason.ValueType
    PropagationScope: TypeAlias = pb.HistoryPropagationScope.ValueType

ORCHESTRATION_STATUS = pb.OrchestrationStatus  # the enum; its values below, by their short names
RUNNING = ORCHESTRATION_STATUS.ORCHESTRATION_STATUS_RUNNING
COMPLETED = ORCHESTRATION_STATUS.ORCHESTRATION_STATUS_COMPLETED
CONTINUED_AS_NEW = ORCHESTRATION_STATUS.ORCHESTRATION_STATUS_CONTINUED_AS_NEW
FAILED = ORCHESTRATION_STATUS.ORCHESTRATION_STATUS_FAILED
CANCELED = ORCHESTRATION_STATUS.ORCHESTRATION_STATUS_CANCELED
TERMINATED = ORCHESTRATION_STATUS.ORCHESTRATION_STATUS_TERMINATED
PENDING = ORCHESTRATION_STATUS.ORCHESTRATION_STATUS_PENDING
SUSPENDED = ORCHESTRATION_STATUS.ORCHESTRATION_STATUS_SUSPENDED
STALLED = ORCHESTRATION_STATUS.ORCHESTRATION_STATUS_STALLED


def status_name(status: Status) -> str:
    """A status's short name, as daprd's HTTP API says it: ``RUNNING``, ``COMPLETED``, ..."""
    return ORCHESTRATION_STATUS.Name(status).removeprefix("ORCHESTRATION_STATUS_")


TERMINAL = frozenset({COMPLETED, FAILED, CANCELED, TERMINATED})

# fireAt of the SDK's "never" timer (the optional timer of an indefinite wait_for_external_event).
SENTINEL_SECONDS = 253402300799
# The createdTimestamp daprd reports for an instance that has not started (Go's zero time).
EPOCH_ZERO = datetime(1, 1, 1, tzinfo=UTC)

Key = tuple[str, str]  # (app ID, instance ID): an app sees only its own instances

# The columns of the state file's ``instances`` table, in its order. The table's DDL is in ``store``; the
# fields of ``Instance`` of the same names are what is written (``test_engine_model`` checks all three agree).
INSTANCE_COLUMNS = (
    "app_id",
    "instance_id",
    "name",
    "status",
    "generation",
    "execution_id",
    "created",
    "updated",
    "input",
    "output",
    "custom_status",
    "failure",
    "parent",
    "started",
    "suspended",
    "stalled",
    "completed",
    "incoming_history",
)
_FLAGS = ("started", "suspended", "stalled", "completed")  # booleans, stored as 0/1


class EngineError(Exception):
    """A request the engine refuses. ``code`` is a ``grpc.StatusCode`` name, ``message`` is daprd's text."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message

    def go_text(self) -> str:
        """The error's text as daprd's Go code prints it: an ALREADY_EXISTS comes from a gRPC status inside
        daprd and keeps its ``rpc error: code = ... desc = ...`` form; the rest are plain errors."""
        if self.code == "ALREADY_EXISTS":
            return f"rpc error: code = AlreadyExists desc = {self.message}"
        return self.message


def no_instance() -> EngineError:
    # daprd returns durabletask-go's api.ErrInstanceNotFound as a plain error, which gRPC sends as UNKNOWN.
    return EngineError("UNKNOWN", "no such instance exists")


def timestamp(t: float) -> timestamp_pb2.Timestamp:
    ts = timestamp_pb2.Timestamp()
    ts.FromNanoseconds(int(t * 1e9))
    return ts


def seconds(ts: timestamp_pb2.Timestamp) -> float:
    return ts.ToNanoseconds() / 1e9


def string_value(value: str | None) -> wrappers_pb2.StringValue | None:
    return None if value is None else wrappers_pb2.StringValue(value=value)


_TRACEPARENT = re.compile(r"[0-9a-f]{2}-([0-9a-f]{32})-([0-9a-f]{16})-[0-9a-f]{2}")


def trace_context(traceparent: str | None, tracestate: str | None = None) -> pb.TraceContext | None:
    """A W3C ``traceparent`` (and ``tracestate``) as the workflow protocol's TraceContext; None when absent or
    malformed (a trace is a convenience: a bad header never fails a request)."""
    match = _TRACEPARENT.fullmatch(traceparent or "")
    if match is None or set(match.group(1)) == {"0"} or set(match.group(2)) == {"0"}:
        return None
    # group(0), the whole match, is ``traceparent`` itself, typed as a str.
    return pb.TraceContext(traceParent=match.group(0), spanID=match.group(2), traceState=string_value(tracestate))


def event(now: float, event_id: int = -1, router: pb.TaskRouter | None = None, **kwargs: Any) -> pb.HistoryEvent:
    """A history event stamped ``now``: of the action ``event_id`` (-1: tied to no action), with ``router`` if
    given; ``kwargs`` is its one event type, e.g. ``timerFired=pb.TimerFiredEvent(...)``."""
    return pb.HistoryEvent(eventId=event_id, timestamp=timestamp(now), router=router, **kwargs)


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
    stream: WorkerStream | None = None


@dataclass
class Turn:
    token: str
    stream: WorkerStream
    inbox_ids: list[int]
    new_events: list[pb.HistoryEvent]


@dataclass
class Instance:
    app_id: str
    instance_id: str
    name: str = ""
    status: Status = PENDING
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
    # Set by a continue-as-new until the new generation's first turn: daprd runs that turn in the same work
    # item and records its WorkflowStarted with the action's router. Not persisted: after a restart in between,
    # that one event lacks the router.
    continued_as_new: bool = False
    history: list[pb.HistoryEvent] = field(default_factory=list)
    inbox: list[InboxItem] = field(default_factory=list)
    turn: Turn | None = None

    @property
    def key(self) -> Key:
        return (self.app_id, self.instance_id)

    def row(self) -> dict[str, Any]:
        """The instance as a row of the ``instances`` table."""
        row = {c: getattr(self, c) for c in INSTANCE_COLUMNS}
        for flag in _FLAGS:
            row[flag] = int(row[flag])
        return row

    @classmethod
    def from_row(cls, row: dict[str, Any]) -> Instance:
        inst = cls(**{c: row[c] for c in INSTANCE_COLUMNS})
        for flag in _FLAGS:
            setattr(inst, flag, bool(row[flag]))
        return inst

    def children(self) -> list[Key]:
        """The child workflows this instance's history has created, as (app ID, instance ID)."""
        out = []
        for e in self.history:
            if e.HasField("childWorkflowInstanceCreated"):
                target = e.router.targetAppID if e.router.HasField("targetAppID") else self.app_id
                out.append((target, e.childWorkflowInstanceCreated.instanceId))
        return out

    def derive_status(self) -> Status:
        if self.completed:
            return self.status
        if not self.started:
            return PENDING
        if self.stalled:
            return STALLED
        if self.suspended:
            return SUSPENDED
        return RUNNING
