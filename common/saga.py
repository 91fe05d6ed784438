"""The saga's step runner for Dapr workflow generators: ``Saga`` calls each step, records its outcome, watches the
cancel, owns the compensation stack (``common.compensation``) and publishes it all as the workflow's custom status.

Pure and deterministic: it only calls the workflow context it is given, so the state it builds is rebuilt
identically on every replay. No I/O, clocks or randomness of its own; business decisions stay in the saga.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Generator
from datetime import UTC, datetime, timedelta
from types import SimpleNamespace
from typing import Any, Literal, TypeVar, overload

from dapr.ext import workflow as wf

from common.compensation import CompensationStack, attempts_of, failure_reason
from common.contracts import Contract, SagaRetry
from common.outcomes import CANCELLED, FAILED, REFUSED, RUNNING, SUCCEEDED, WAITING, SagaAborted

log = logging.getLogger(__name__)

R = TypeVar("R", bound=Contract)
_NOT_YET = object()  # no cancel event seen yet
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


def _ok(result: Any) -> bool:
    """Forward steps answer ``ok``; a notification answers ``sent``."""
    return bool(getattr(result, "ok", getattr(result, "sent", True)))


def _event_data(task: Any) -> dict[str, Any]:
    """An external event's data as a dict of the fields a decision may carry (anything else is ignored)."""
    data = task.get_result()
    data = vars(data) if isinstance(data, SimpleNamespace) else data
    if not isinstance(data, dict):
        return {}
    kept = {k: v for k in ("reviewer", "note") if isinstance(v := data.get(k), str) and v}
    return {"approved": data.get("approved") is True, **kept}


def _verdict(decided: bool, timed_out: bool, data: dict[str, Any], deadline: datetime) -> tuple[str, str | None]:
    """How a wait for a decision ended (approved, rejected, timed_out, cancelled) and why it refuses, if it does."""
    if decided and data.get("approved"):
        return "approved", None
    if decided:
        note = f": {data['note']}" if "note" in data else ""
        return "rejected", f"rejected by {data.get('reviewer', 'a person')}{note}"
    if timed_out:
        return "timed_out", f"no decision before the deadline, {deadline.isoformat()}"
    return "cancelled", None


class Saga:
    """One saga run: calls steps with a retry policy, records every step's outcome, watches a cancel
    event, owns the compensation stack, and publishes all of it as the workflow's custom status."""

    def __init__(
        self, ctx: Any, retry_policy: wf.RetryPolicy, cancel: Any = None, cancel_event: str | None = None
    ) -> None:
        """``cancel``: a task of ``wait_for_external_event`` (kept for sagas started before polling); or
        ``cancel_event``: the name of an event polled at each check with a zero timeout, which schedules no timer
        (an indefinite wait makes the SDK schedule a sentinel timer: on daprd a scheduler job per saga, and two
        delete-by-prefix calls when the saga ends)."""
        self.ctx = ctx
        self.retry_policy = retry_policy
        self.stack = CompensationStack()
        self._cancel = cancel
        self._cancel_event = cancel_event
        self._cancel_data: Any = _NOT_YET
        self._unpublished = False  # the summary changed since the custom status was last set
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
        return self._accepted(name, result)

    def child(
        self,
        name: str,
        app_id: str | None,
        input: Any,
        result_type: type[R],
        *,
        instance_id: str,
        propagation: wf.PropagationScope | None = wf.PropagationScope.LINEAGE,
    ) -> Steps[R]:
        """``result = yield from saga.child(...)``: a child workflow ``name`` on app ``app_id``, run as ``step`` runs
        an activity (cancel checked before and after, the saga's retry policy, SagaAborted when it says no or still
        fails after its retries). ``instance_id``: the child's own, derived from the saga's so a replay or a retry
        finds the same child. ``propagation``: what of this saga's history the engine hands the child (LINEAGE: all
        of it, and what this saga itself was handed). What the child returns about itself (e.g. its own steps) is
        kept in its entry, so the child can be shown as a lane of its own."""
        self.check_cancel(name)
        entry = self._begin(name, app_id, kind="workflow", instance_id=instance_id)
        task = self.ctx.call_child_workflow(
            name,
            input=input,
            instance_id=instance_id,
            app_id=app_id,
            retry_policy=self.retry_policy,
            propagation=propagation,
        )
        result = yield from self._outcome(entry, task, result_type, abort_on_failure=True)
        assert result is not None  # abort_on_failure: a failed child raised
        for field, value in result.model_dump().items():
            entry.setdefault(field, value)
        self.publish()
        return self._accepted(name, result)

    def wait_for_decision(
        self,
        name: str,
        event: str,
        timeout: timedelta,
        *,
        reason: str | None,
        status: str,
        on_change: Callable[[str], Steps[Any]] | None = None,
    ) -> Steps[dict[str, Any]]:
        """``decision = yield from saga.wait_for_decision(...)``: wait for a person's decision, the external ``event``
        with ``{"approved": bool, "reviewer"?: str, "note"?: str}``, until a durable timer at now + ``timeout``; a
        cancel ends the wait too. While it waits the saga's status is ``status``, and ``summary_fields[name]`` says
        why (``reason``), since when and until when (``deadline``). ``on_change(status)`` runs once the wait is
        published and again with "RUNNING" once approved (e.g. to record it). Approved: returns the decision;
        rejected, or no decision by the deadline: SagaAborted(REFUSED); cancelled: SagaAborted(CANCELLED)."""
        self.check_cancel(name)
        asked = self._clock()
        deadline = asked + timeout
        entry = self._begin(name, None, kind="wait", outcome=WAITING, deadline=deadline.isoformat())
        wait = {"state": WAITING, "requested_at": asked.isoformat(), "deadline": deadline.isoformat(), "reason": reason}
        self.summary_fields[name] = wait
        self.status = status
        self.publish()
        if on_change is not None:
            yield from on_change(status)
        if self._cancel is None and self._cancel_event is not None:
            # A poll cannot end a wait: race a wait for the cancel event against the person (the SDK gives it its
            # sentinel timer, on this path only). From here on the event goes to this task (``_cancelled``).
            self._cancel = self.ctx.wait_for_external_event(self._cancel_event)
        decision = self.ctx.wait_for_external_event(event)
        timer = self.ctx.create_timer(deadline.replace(tzinfo=None))  # the SDK's clock is naive UTC
        cancel = [self._cancel] if self._cancel is not None else []
        self.flush()
        first = yield wf.when_any([decision, timer, *cancel])
        self.status = "RUNNING"
        data = _event_data(decision) if first is decision else {}
        state, refusal = _verdict(first is decision, first is timer, data, deadline)
        wait.update(state=state, decided_at=self.now(), **{k: data[k] for k in ("reviewer", "note") if k in data})
        self._finish(entry, None, {"approved": SUCCEEDED, "cancelled": CANCELLED}.get(state, REFUSED), refusal)
        self.check_cancel(name)  # the cancel came first (or with the decision): a cancel, as after any step
        if refusal is not None:
            raise SagaAborted(REFUSED, name, refusal)
        if on_change is not None:
            yield from on_change(self.status)
        return data

    def note(self, name: str, app_id: str | None, outcome: str, reason: str | None = None) -> None:
        """Record a step the workflow decided itself, without calling anything (e.g. a check of its input)."""
        entry = self._begin(name, app_id)
        self._finish(entry, None, outcome, reason)

    def _accepted(self, name: str, result: R) -> R:
        """A forward step's result, once its step finished: SagaAborted if a cancel came meanwhile or it said no."""
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
        self.flush()
        try:
            yield task
            return True
        except wf.TaskFailedError as err:
            self.warnings.append(f"{name} failed: {failure_reason(err)}")
            self.publish()
            return False

    def check_cancel(self, step: str) -> None:
        """SagaAborted(CANCELLED) once the cancel event has come."""
        data = self._cancelled()
        if data is not _NOT_YET:
            reason = data.get("reason") if isinstance(data, dict) else None
            raise SagaAborted(CANCELLED, step, reason or "cancelled on request")

    def _cancelled(self) -> Any:
        """The cancel event's data once it has come, else _NOT_YET."""
        if self._cancel is not None:
            # A task waits for the event (a saga started before polling, or one that raced a wait on a person against
            # it): the event completes that task and is never buffered for a poll.
            if self._cancel.is_complete:
                return self._cancel.get_result() if not self._cancel.is_failed else None
            return _NOT_YET
        if self._cancel_event is not None and self._cancel_data is _NOT_YET:
            # Takes the event if it has arrived (buffered by the SDK in history order, so replay sees the same thing at
            # the same check); otherwise an already-cancelled task, and nothing is scheduled.
            polled = self.ctx.wait_for_external_event(self._cancel_event, timeout=timedelta(0))
            if polled.is_complete and not polled.is_failed:
                self._cancel_data = polled.get_result()
        return self._cancel_data

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
        entry = self._begin(name, app_id)
        task = self.ctx.call_activity(name, input=input, app_id=app_id, retry_policy=self.retry_policy)
        return (yield from self._outcome(entry, task, result_type, abort_on_failure))

    def _begin(self, name: str, app_id: str | None, **extra: Any) -> dict[str, Any]:
        entry: dict[str, Any] = {"name": name, "app": app_id, "outcome": RUNNING, "started_at": self.now(), **extra}
        self.steps.append(entry)
        self.publish()
        return entry

    def _outcome(
        self, entry: dict[str, Any], task: Any, result_type: type[R], abort_on_failure: bool
    ) -> Steps[R | None]:
        self.flush()
        try:
            raw = yield task
        except wf.TaskFailedError as err:
            self._finish(entry, task, FAILED, failure_reason(err))
            if abort_on_failure:
                raise SagaAborted(FAILED, entry["name"], entry["reason"]) from None
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
        if task is not None and (attempts := attempts_of(task)) is not None:
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
        return (
            yield from self.stack.unwind(self.ctx, self.retry_policy, on_change=self.publish, before_yield=self.flush)
        )

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
        """The summary changed: it becomes the workflow's custom status before the saga next waits (``flush``)."""
        self._unpublished = True

    def flush(self) -> None:
        """Set the custom status to the summary if it changed since it was last set. The engine keeps the last one
        set in a turn, so setting it once before each yield sends what setting it at every change sent, for a
        fraction of the JSON (issue 18: 7 % of the order-api's CPU). A workflow calls it before it returns."""
        if self._unpublished:
            self._unpublished = False
            self.ctx.set_custom_status(json.dumps(self.summary(), separators=(",", ":")))

    def log(self, msg: str, *args: Any) -> None:
        if not self.ctx.is_replaying:
            log.info("%s: " + msg, self.ctx.instance_id, *args)

    def now(self) -> str:
        """The workflow's clock (replayed as it was), as an ISO 8601 string in UTC."""
        return self._clock().isoformat()

    def _clock(self) -> datetime:
        now: datetime = self.ctx.current_utc_datetime  # the SDK hands out naive UTC
        return now if now.tzinfo else now.replace(tzinfo=UTC)
