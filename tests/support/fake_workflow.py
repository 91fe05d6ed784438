"""FakeWorkflowContext: a fake of the SDK's DaprWorkflowContext that drives a workflow generator in-process.

A fake, because the real context needs a sidecar's history stream. It keeps the contract the saga relies on:
JSON in and out (through the SDK's own encoder), retries counted against the RetryPolicy's max attempts as the
SDK does (NonRetryableError is not retried), the real TaskFailedError once retries are exhausted, naive UTC
clock values, a cancel event that arrives mid-step, child workflows (scripted like activities), external events
that arrive (``events``) or never do, durable timers that fire when nothing else came first, the SDK's own
``when_any`` over these tasks, and a propagated history (``propagated``).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

import dapr.ext.workflow._durabletask.internal.protos as pb
from dapr.ext import workflow as wf
from dapr.ext.workflow._durabletask.internal import shared


@dataclass(frozen=True)
class Boom:
    """A scripted technical failure of one attempt (the activity raised)."""

    message: str = "boom"
    error_type: str = "ConnectionError"


@dataclass
class Call:
    name: str
    app_id: str | None
    input: Any
    retry_policy: wf.RetryPolicy | None
    attempts: int = 0
    kind: str = "activity"  # or "workflow": a child workflow
    instance_id: str | None = None
    propagation: Any = None


class FakeTask:
    def __init__(self) -> None:
        self.is_complete = False
        self.is_failed = False
        self._result: Any = None
        self._exception: Exception | None = None
        self._attempt_count = 1
        self._parent: Any = None  # the SDK's when_any adopts its tasks

    def complete(self, result: Any) -> None:
        self.is_complete, self._result = True, result

    def fail(self, exc: Exception) -> None:
        self.is_complete, self.is_failed, self._exception = True, True, exc

    def get_result(self) -> Any:
        if self._exception is not None:
            raise self._exception
        return self._result

    def get_exception(self) -> Exception:
        assert self._exception is not None
        return self._exception


@dataclass
class FakeWorkflowContext:
    """script: activity name -> one outcome or a list of per-attempt outcomes (the last one repeats).
    An outcome is a result (dict or contract instance) or a Boom. cancel_during: the cancel event arrives
    while that activity is in flight; cancel_at_start: it was raised before the workflow first ran."""

    script: dict[str, Any]
    events: dict[str, Any] = field(default_factory=dict)  # external events that arrive when waited for
    propagated: Any = None  # what get_propagated_history() answers
    instance_id: str = "order-1"
    is_replaying: bool = False
    cancel_during: str | None = None
    cancel_at_start: bool = False
    cancel_data: Any = None
    # What is_patched answers: a new instance (True), one replayed from before every patch (False), or the names of
    # the patches its history records (one started between two changes).
    patched: bool | set[str] = True
    calls: list[Call] = field(default_factory=list)
    statuses: list[dict[str, Any]] = field(default_factory=list)
    events_waited: list[str] = field(default_factory=list)  # waits that end when the event comes
    events_polled: list[str] = field(default_factory=list)  # zero-timeout waits: take the event if it has come
    timers: list[datetime] = field(default_factory=list)
    _now: datetime = datetime(2030, 1, 2, 3, 4, 5)  # naive UTC, as the SDK hands it out
    _cancel: FakeTask | None = None
    _cancel_buffered: bool = False  # the cancel event came with no task waiting for it: a poll takes it
    _last_event: FakeTask | None = None

    def __post_init__(self) -> None:
        self._cancel_buffered = self.cancel_at_start

    @property
    def current_utc_datetime(self) -> datetime:
        return self._now

    def is_patched(self, patch_name: str) -> bool:
        return self.patched if isinstance(self.patched, bool) else patch_name in self.patched

    def set_custom_status(self, custom_status: str) -> None:
        self.statuses.append(json.loads(custom_status))

    def get_propagated_history(self) -> Any:
        return self.propagated

    def wait_for_external_event(self, name: str, *, timeout: Any = None) -> FakeTask:
        (self.events_polled if timeout == timedelta(0) else self.events_waited).append(name)
        task = FakeTask()
        if name == "cancel":
            # As the SDK: an event that came before anyone waited is buffered; a wait takes it at once, and a zero
            # timeout wait (a poll) that finds none is a task cancelled at once, leaving nothing waiting.
            if self._cancel_buffered:
                self._cancel_buffered = False
                task.complete(self.cancel_data)
            elif timeout == timedelta(0):
                task.fail(TimeoutError("Wait for external event 'cancel' canceled immediately due to zero timeout"))
            else:
                self._cancel = task
            return task
        if name == self.cancel_during:
            self._deliver_cancel()
        if name in self.events:
            task.complete(json.loads(shared.to_json(self.events[name])))
        self._last_event = task
        return task

    def create_timer(self, fire_at: datetime | timedelta) -> FakeTask:
        """Fires (at once, in the fake's time) unless the event waited for just before it has already come, or a
        cancel has: a timer raced against an event only fires when the event does not come."""
        assert isinstance(fire_at, datetime) and fire_at.tzinfo is None, "the SDK's clock is naive UTC"
        self.timers.append(fire_at)
        task = FakeTask()
        came = (self._last_event is not None and self._last_event.is_complete) or (
            self._cancel is not None and self._cancel.is_complete
        )
        if not came:
            self._now = max(self._now, fire_at)
            task.complete(None)
        return task

    def call_activity(
        self,
        activity: str,
        *,
        input: Any = None,
        retry_policy: Any = None,
        app_id: str | None = None,
        propagation: Any = None,
    ) -> FakeTask:
        assert isinstance(activity, str), "the saga calls activities by name"
        return self._scripted(Call(activity, app_id, json.loads(shared.to_json(input)), retry_policy))

    def call_child_workflow(
        self,
        workflow: str,
        *,
        input: Any = None,
        instance_id: str | None = None,
        retry_policy: Any = None,
        app_id: str | None = None,
        propagation: Any = None,
    ) -> FakeTask:
        assert isinstance(workflow, str), "the saga calls child workflows by name"
        call = Call(workflow, app_id, json.loads(shared.to_json(input)), retry_policy, 0, "workflow", instance_id)
        call.propagation = propagation
        return self._scripted(call)

    def _scripted(self, call: Call) -> FakeTask:
        retry_policy = call.retry_policy
        assert retry_policy is None or isinstance(retry_policy, wf.RetryPolicy)
        self.calls.append(call)
        if call.name == self.cancel_during:
            self._deliver_cancel()
        task = FakeTask()
        outcomes = self.script.get(call.name)
        outcomes = outcomes if isinstance(outcomes, list) else [outcomes]
        max_attempts = retry_policy.max_number_of_attempts if retry_policy else 1
        for attempt in range(1, max_attempts + 1):
            call.attempts = task._attempt_count = attempt
            outcome = outcomes[min(attempt, len(outcomes)) - 1]
            self._now += timedelta(seconds=1)
            if not isinstance(outcome, Boom):
                task.complete(json.loads(shared.to_json(outcome)))
                return task
            if outcome.error_type == "NonRetryableError":  # the SDK's retry loop gives up at once
                break
        details = pb.TaskFailureDetails(errorMessage=outcome.message, errorType=outcome.error_type)
        task.fail(wf.TaskFailedError(f"Task {call.name} failed: {outcome.message}", details))
        return task

    def run(self, workflow: Any, payload: Any) -> Any:
        """Drive the generator to its end as the SDK's executor does; returns the (JSON) output."""
        gen = workflow(self, json.loads(shared.to_json(payload)))
        value: Any = None
        error: Exception | None = None
        while True:
            try:
                task = gen.throw(error) if error is not None else gen.send(value)
            except StopIteration as stop:
                return json.loads(shared.to_json(stop.value))
            assert task.is_complete, "the workflow waits on a task nothing will complete"
            value, error = (None, task.get_exception()) if task.is_failed else (task.get_result(), None)

    def _deliver_cancel(self) -> None:
        if self._cancel is not None and not self._cancel.is_complete:
            self._cancel.complete(self.cancel_data)
        elif self._cancel is None:
            self._cancel_buffered = True

    # Convenience views for assertions.
    def names(self) -> list[str]:
        return [c.name for c in self.calls]

    def route(self) -> list[tuple[str, str | None]]:
        return [(c.name, c.app_id) for c in self.calls]
