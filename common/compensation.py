"""The compensation stack of a saga: undos pushed before their steps, run last-in-first-out, each one's outcome
recorded. ``attempts_of`` and ``failure_reason`` read a task's attempts and failure, for the undos here and for the
steps of ``common.saga``.

Pure and deterministic: it only calls the workflow context it is given, and holds plain JSON-able data, so it is
part of the workflow's durable state: the saga's generator rebuilds it identically on every replay, and finished
undos replay from history. No I/O, clocks or randomness of its own.
"""

from __future__ import annotations

import json
from collections.abc import Generator
from dataclasses import dataclass
from typing import Any

from dapr.ext import workflow as wf

from common.contracts import Contract
from common.outcomes import FAILED, PENDING


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
        self,
        ctx: Any,
        retry_policy: wf.RetryPolicy | None = None,
        on_change: Any = None,
        before_yield: Any = None,
    ) -> Generator[Any, Any, list[dict[str, Any]]]:
        """``outcomes = yield from stack.unwind(ctx, policy)``: run every undo, newest first. ``on_change()`` runs
        after each undo's outcome, ``before_yield()`` before each undo is waited for.

        An undo that still fails after its retries is recorded as 'failed' and the unwind goes on:
        the other undos are independent, and stopping would leave more effects behind.
        """
        outcomes: list[dict[str, Any]] = []
        while self._pending:
            undo = self._pending[-1]
            task = ctx.call_activity(undo.name, input=undo.input, app_id=undo.app_id, retry_policy=retry_policy)
            outcome: dict[str, Any]
            if before_yield is not None:
                before_yield()
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


def _undo_outcome(result: Any) -> str:
    if isinstance(result, dict) and isinstance(outcome := result.get("outcome"), str):
        return outcome
    return "undone"
