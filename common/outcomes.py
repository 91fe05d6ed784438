"""The saga's vocabulary as plain data: the outcomes of steps and undos as they appear in the custom status and
the workflow output, and ``SagaAborted``, how a forward path ends early. Shared by the saga machinery
(``common.compensation`` and ``common.saga``) and the order rules (``orchestrator.domain``); imports nothing.
"""

from __future__ import annotations

# Step outcomes.
RUNNING = "running"
SUCCEEDED = "succeeded"
REFUSED = "refused"  # the service answered with a business "no" (ok=False)
FAILED = "failed"  # still raising after every retry
CANCELLED = "cancelled"  # SagaAborted.kind when the cancel event stopped the forward path
WAITING = "waiting"  # a wait for a person's decision, until its deadline
# Compensation outcomes; "undone" and "nothing_to_undo" come from the service (contracts.UndoResult).
PENDING = "pending"


class SagaAborted(Exception):
    """Raised inside the workflow generator to stop the forward path. Control flow, never seen by Dapr.

    kind: 'refused' (business no), 'failed' (technical, retries exhausted) or 'cancelled' (external event).
    """

    def __init__(self, kind: str, step: str, reason: str):
        super().__init__(f"{step} {kind}: {reason}")
        self.kind, self.step, self.reason = kind, step, reason

    def failure(self) -> dict[str, str]:
        return {"step": self.step, "reason": self.reason}
