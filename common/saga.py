"""Saga machinery for Dapr workflow generators: the compensation stack and a step runner that records outcomes.

Pure and deterministic: it only calls the workflow context it is given, so the state it builds is rebuilt
identically on every replay. No I/O, clocks or randomness of its own; business decisions stay in the saga.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Generator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, Literal, TypeVar, overload

from dapr.ext import workflow as wf

from common.contracts import Contract, SagaRetry
from common.outcomes import CANCELLED, FAILED, PENDING, REFUSED, RUNNING, SUCCEEDED, SagaAborted

log = logging.getLogger(__name__)

R = TypeVar("R", bound=Contract)
Out = TypeVar("Out")
Steps = Generator[Any, Any, Out]  # a workflow generator: yields SDK tasks, returns Out


def retry_policy(retry: SagaRetry) -> wf.RetryPolicy:
    """The SDK's retry policy for ``retry``."""
    return wf.RetryPolicy(
        max_number_of_attempts=retry.max_attempts,
        first_retry_interval=timedelta(milliseconds=retry.first_interval_ms),
        backoff_coefficient=retry.backoff,
        max_retry_interval=timedelta(milliseconds=retry.max_interval_ms),
    )


@dataclass(frozen=True)
class Compensation:
    """One undo on the stack: which activity, on which app, with what (JSON) input."""

    name: str
    app_id: str | None
    input: dict[str, Any]


def attempts_of(task: Any) -> int | None:
    """How many attempts the SDK made for a task. The SDK keeps the count only on its private
    RetryableTask attribute; it is replayed from history, so reading it is deterministic."""
    return getattr(task, "_attempt_count", None)


def failure_reason(err: wf.TaskFailedError) -> str:
    details = err.details
    return f"{details.error_type}: {details.message}" if details.error_type else details.message


class CompensationStack:
    """Undos pushed before their steps and run last-in-first-out; continues past a failed undo.

    The stack is plain JSON-able data built by deterministic workflow code, so it is part of the
    workflow's durable state: replay rebuilds it and replays finished undos from history.
    """

    def __init__(self) -> None:
        self._pending: list[Compensation] = []
        self._done: list[dict[str, Any]] = []

    def push(self, name: str, app_id: str | None, input: Contract | dict[str, Any]) -> None:
        data = input.model_dump() if isinstance(input, Contract) else dict(input)
        json.dumps(data)  # fail at push time, in the saga, rather than at the sidecar mid-unwind
        self._pending.append(Compensation(name, app_id, data))

    def clear(self) -> None:
        self._pending.clear()

    @property
    def pending(self) -> list[Compensation]:
        """Undos not yet run, in the order they will run (LIFO)."""
        return list(reversed(self._pending))

    @property
    def failed(self) -> list[dict[str, Any]]:
        return [c for c in self._done if c["outcome"] == FAILED]

    def view(self) -> list[dict[str, Any]]:
        """Finished undos in run order, then pending ones in the order they will run."""
        return [*self._done, *({"name": c.name, "outcome": PENDING} for c in self.pending)]

    def unwind(
        self, ctx: Any, retry_policy: wf.RetryPolicy | None = None, on_change: Any = None
    ) -> Steps[list[dict[str, Any]]]:
        """``outcomes = yield from stack.unwind(ctx, policy)``: run every undo, newest first.

        An undo that still fails after its retries is recorded as 'failed' and the unwind goes on:
        the other undos are independent, and stopping would leave more effects behind.
        """
        outcomes: list[dict[str, Any]] = []
        while self._pending:
            undo = self._pending[-1]
            task = ctx.call_activity(undo.name, input=undo.input, app_id=undo.app_id, retry_policy=retry_policy)
            outcome: dict[str, Any]
            try:
                result = yield task
                outcome = {"name": undo.name, "outcome": _undo_outcome(result)}
            except wf.TaskFailedError as err:
                outcome = {"name": undo.name, "outcome": FAILED, "reason": failure_reason(err)}
            if (attempts := attempts_of(task)) is not None:
                outcome["attempts"] = attempts
            self._pending.pop()
            self._done.append(outcome)
            outcomes.append(outcome)
            if on_change is not None:
                on_change()
        return outcomes


def _ok(result: Any) -> bool:
    """Forward steps answer ``ok``; a notification answers ``sent``."""
    return bool(getattr(result, "ok", getattr(result, "sent", True)))


def _undo_outcome(result: Any) -> str:
    if isinstance(result, dict) and isinstance(outcome := result.get("outcome"), str):
        return outcome
    return "undone"


class Saga:
    """One saga run: calls steps with a retry policy, records every step's outcome, watches a cancel
    event, owns the compensation stack, and publishes all of it as the workflow's custom status."""

    def __init__(self, ctx: Any, retry_policy: wf.RetryPolicy, cancel: Any = None) -> None:
        self.ctx = ctx
        self.retry_policy = retry_policy
        self.stack = CompensationStack()
        self._cancel = cancel
        self.steps: list[dict[str, Any]] = []
        self.warnings: list[str] = []
        self.status = "RUNNING"
        self.failure: dict[str, str] | None = None
        self.summary_fields: dict[str, Any] = {}  # business facts the summary shows beside the steps, e.g. total_cents

    # --- forward steps -------------------------------------------------------------------------------

    def push(self, name: str, app_id: str | None, input: Contract | dict[str, Any]) -> None:
        """Register the undo of the next step *before* the step: a step that timed out may still have happened."""
        self.stack.push(name, app_id, input)
        self.publish()

    def step(self, name: str, app_id: str | None, input: Any, result_type: type[R]) -> Steps[R]:
        """``result = yield from saga.step(...)``. Raises SagaAborted when the step says no (ok=False),
        still fails after its retries, or a cancel has arrived before it or while it was in flight."""
        self.check_cancel(name)
        result = yield from self._call(name, app_id, input, result_type, abort_on_failure=True)
        self.check_cancel(name)  # in flight when the cancel came: its undo is already on the stack
        if getattr(result, "cancelled", False):
            # The service found this step's tombstone: its undo ran first, so the step did nothing.
            raise SagaAborted(REFUSED, name, "undone before it ran")
        if not _ok(result):
            raise SagaAborted(REFUSED, name, getattr(result, "reason", None) or "refused")
        return result

    def best_effort(self, name: str, app_id: str | None, input: Any, result_type: type[R]) -> Steps[R | None]:
        """A step whose failure is recorded but changes nothing else (returns None when it failed)."""
        return (yield from self._call(name, app_id, input, result_type, abort_on_failure=False))

    def bookkeeping(self, name: str, input: Any) -> Steps[bool]:
        """Bookkeeping on the workflow's own app (no app id): not listed as a step unless it fails."""
        task = self.ctx.call_activity(name, input=input, retry_policy=self.retry_policy)
        try:
            yield task
            return True
        except wf.TaskFailedError as err:
            self.warnings.append(f"{name} failed: {failure_reason(err)}")
            self.publish()
            return False

    def check_cancel(self, step: str) -> None:
        if self._cancel is not None and self._cancel.is_complete:
            data = self._cancel.get_result() if not self._cancel.is_failed else None
            reason = data.get("reason") if isinstance(data, dict) else None
            raise SagaAborted(CANCELLED, step, reason or "cancelled on request")

    @overload
    def _call(
        self, name: str, app_id: str | None, input: Any, result_type: type[R], abort_on_failure: Literal[True]
    ) -> Steps[R]: ...
    @overload
    def _call(
        self, name: str, app_id: str | None, input: Any, result_type: type[R], abort_on_failure: Literal[False]
    ) -> Steps[R | None]: ...
    def _call(
        self, name: str, app_id: str | None, input: Any, result_type: type[R], abort_on_failure: bool
    ) -> Steps[R | None]:
        entry: dict[str, Any] = {"name": name, "app": app_id, "outcome": RUNNING, "started_at": self.now()}
        self.steps.append(entry)
        self.publish()
        task = self.ctx.call_activity(name, input=input, app_id=app_id, retry_policy=self.retry_policy)
        try:
            raw = yield task
        except wf.TaskFailedError as err:
            self._finish(entry, task, FAILED, failure_reason(err))
            if abort_on_failure:
                raise SagaAborted(FAILED, name, entry["reason"]) from None
            return None
        result = result_type.model_validate(raw)
        refused = not _ok(result)
        reason = getattr(result, "reason", None) or getattr(result, "detail", None)
        self._finish(entry, task, REFUSED if refused else SUCCEEDED, reason if refused else None)
        return result

    def _finish(self, entry: dict[str, Any], task: Any, outcome: str, reason: str | None) -> None:
        entry["outcome"] = outcome
        if reason:
            entry["reason"] = reason
        if (attempts := attempts_of(task)) is not None:
            entry["attempts"] = attempts
        entry["finished_at"] = self.now()
        self.log("%s %s", entry["name"], outcome)
        self.publish()

    def commit(self) -> None:
        """Every forward step is done: the undos will never run, so drop them (a late cancel changes nothing)."""
        self.stack.clear()
        self.publish()

    # --- unwinding and the end -----------------------------------------------------------------------

    def unwind(self) -> Steps[list[dict[str, Any]]]:
        """Run every pushed undo (LIFO) with the saga's retry policy; returns their outcomes."""
        return (yield from self.stack.unwind(self.ctx, self.retry_policy, on_change=self.publish))

    def conclude(self, status: str, failure: dict[str, str] | None = None) -> None:
        self.status, self.failure = status, failure
        self.log("concluded %s %s", status, failure or "")
        self.publish()

    def summary(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "status": self.status,
            "failure": self.failure,
            "steps": self.steps,
            "compensations": self.stack.view(),
            **self.summary_fields,
        }
        if self.warnings:
            out["warnings"] = self.warnings
        return out

    def publish(self) -> None:
        self.ctx.set_custom_status(json.dumps(self.summary(), separators=(",", ":")))

    def log(self, msg: str, *args: Any) -> None:
        if not self.ctx.is_replaying:
            log.info("%s: " + msg, self.ctx.instance_id, *args)

    def now(self) -> str:
        """The workflow's clock (replayed as it was), as an ISO 8601 string in UTC."""
        now: datetime = self.ctx.current_utc_datetime  # the SDK hands out naive UTC
        return (now if now.tzinfo else now.replace(tzinfo=UTC)).isoformat()
