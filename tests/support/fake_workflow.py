"""FakeWorkflowContext: a fake of the SDK's DaprWorkflowContext that drives a workflow generator in-process.

A fake, because the real context needs a sidecar's history stream. It keeps the contract the saga relies on:
JSON in and out (through the SDK's own encoder), retries counted against the RetryPolicy's max attempts as the
SDK does (NonRetryableError is not retried), the real TaskFailedError once retries are exhausted, naive UTC
clock values, and a cancel event that arrives mid-step.
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


class FakeTask:
    def __init__(self) -> None:
        self.is_complete = False
        self.is_failed = False
        self._result: Any = None
        self._exception: Exception | None = None
        self._attempt_count = 1

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
    instance_id: str = "order-1"
    is_replaying: bool = False
    cancel_during: str | None = None
    cancel_at_start: bool = False
    cancel_data: Any = None
    patched: bool = True  # what is_patched answers: a new instance (True) or one replayed from before a patch
    calls: list[Call] = field(default_factory=list)
    statuses: list[dict[str, Any]] = field(default_factory=list)
    events_waited: list[str] = field(default_factory=list)
    _now: datetime = datetime(2030, 1, 2, 3, 4, 5)  # naive UTC, as the SDK hands it out
    _cancel: FakeTask | None = None

    @property
    def current_utc_datetime(self) -> datetime:
        return self._now

    def is_patched(self, patch_name: str) -> bool:
        return self.patched

    def set_custom_status(self, custom_status: str) -> None:
        self.statuses.append(json.loads(custom_status))

    def wait_for_external_event(self, name: str, *, timeout: Any = None) -> FakeTask:
        self.events_waited.append(name)
        self._cancel = FakeTask()
        if self.cancel_at_start:
            self._deliver_cancel()
        return self._cancel

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
        assert retry_policy is None or isinstance(retry_policy, wf.RetryPolicy)
        call = Call(activity, app_id, json.loads(shared.to_json(input)), retry_policy)
        self.calls.append(call)
        if activity == self.cancel_during:
            self._deliver_cancel()
        task = FakeTask()
        outcomes = self.script.get(activity)
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
        task.fail(wf.TaskFailedError(f"Activity task {activity} failed: {outcome.message}", details))
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

    # Convenience views for assertions.
    def names(self) -> list[str]:
        return [c.name for c in self.calls]

    def route(self) -> list[tuple[str, str | None]]:
        return [(c.name, c.app_id) for c in self.calls]
