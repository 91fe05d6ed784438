"""What is known about an order: what the workflow engine says of its saga (``WorkflowView``: where it stands, the
record its end calls for), and the public view of the order from its row and that (``Order``, ``order_view``).

Plain Python like ``orchestrator.domain``, whose statuses and records it reads.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from common.outcomes import RUNNING as STEP_RUNNING
from common.outcomes import WAITING
from orchestrator.domain import (
    APPROVAL,
    AWAITING_APPROVAL,
    PENDING,
    RUNNING,
    STOPPED_OUTSIDE_THE_SAGA,
    TERMINAL,
    WORKFLOW_FAILED,
    OrderStatusUpdate,
)


@dataclass(frozen=True)
class WorkflowView:
    """What the workflow engine says about an order's saga instance."""

    runtime_status: str  # the SDK's WorkflowStatus name: RUNNING, COMPLETED, FAILED, TERMINATED, PENDING, ...
    custom_status: dict[str, Any] | None
    output: dict[str, Any] | None
    failure: str | None

    @property
    def summary(self) -> dict[str, Any] | None:
        """What the saga last said about itself: its output once it finished, else its custom status."""
        return self.output if self.output is not None else self.custom_status

    @property
    def stopped_outside_the_saga(self) -> bool:
        """The workflow failed or was terminated without the saga concluding: an operator must resolve the order."""
        return self.runtime_status in STOPPED_OUTSIDE_THE_SAGA and self.finished_update("") is None

    def _said_steps(self, *outcomes: str) -> list[dict[str, Any]]:
        """The steps in the saga's last custom status whose outcome is one of ``outcomes``, oldest first."""
        return [s for s in (self.custom_status or {}).get("steps") or [] if s.get("outcome") in outcomes]

    def step_in_flight(self) -> str | None:
        """The step (an activity or a child workflow; not a wait for a person) a running saga last said is in flight."""
        if self.runtime_status != "RUNNING":
            return None
        running = [s["name"] for s in self._said_steps(STEP_RUNNING) if isinstance(s.get("name"), str)]
        return running[-1] if running else None

    def child_in_flight(self) -> tuple[str, str] | None:
        """(app, instance ID) of the child workflow a running saga last said it waits for, if any."""
        if self.runtime_status != "RUNNING":
            return None
        children = [s for s in self._said_steps(STEP_RUNNING) if s.get("kind") == "workflow"]
        if not children:
            return None
        app, instance_id = children[-1].get("app"), children[-1].get("instance_id")
        return (app, instance_id) if isinstance(app, str) and isinstance(instance_id, str) else None

    def failed_update(self, order_id: str) -> OrderStatusUpdate | None:
        """The WORKFLOW_FAILED record a workflow that stopped outside the saga calls for: the step it was at (the
        last one the saga said was running, or waiting for a person) and the engine's reason."""
        if not self.stopped_outside_the_saga:
            return None
        running = [s["name"] for s in self._said_steps(STEP_RUNNING, WAITING)]
        step = running[-1] if running else "workflow"
        reason = self.failure or ("terminated" if self.runtime_status == "TERMINATED" else "failed")
        failure = {"step": step, "reason": f"the workflow {self.runtime_status.lower()}: {reason}"}
        return OrderStatusUpdate(order_id, WORKFLOW_FAILED, failure, None, self.custom_status)

    def finished_update(self, order_id: str) -> OrderStatusUpdate | None:
        """The status record the saga's output calls for, once it finished with a terminal status."""
        summary = self.output
        if not summary or summary.get("status") not in TERMINAL:
            return None
        return OrderStatusUpdate(
            order_id, summary["status"], summary.get("failure"), summary.get("total_cents"), summary
        )


@dataclass(frozen=True)
class Order:
    """The public view of an order: its row, with steps and compensations from the live workflow if there is one,
    else from the summary stored when the saga finished."""

    order_id: str
    status: str
    customer_id: str
    email: str
    total_cents: int | None
    items: list[dict[str, Any]]
    steps: list[dict[str, Any]]
    compensations: list[dict[str, Any]]
    failure: dict[str, str] | None
    created_at: str
    updated_at: str
    warnings: list[str] | None = None
    workflow: dict[str, Any] | None = None  # only when the workflow itself stopped (FAILED, TERMINATED, ...)
    cancel_requested: bool | None = None
    resolution: dict[str, Any] | None = None  # the operator's resolution of a WORKFLOW_FAILED order, once asked for
    approval: dict[str, Any] | None = None  # only for an order the risk review gave a person to decide
    decision_requested: str | None = None  # "approve" or "reject": the answer to that request


@dataclass(frozen=True)
class OrderListing:
    items: list[Order] = field(default_factory=list)
    next_cursor: str | None = None


def order_view(row: Mapping[str, Any], workflow: WorkflowView | None, resolution: WorkflowView | None = None) -> Order:
    """The view of an order from its row and, if there is one, its workflow (and the operator's resolution). A saga
    that finished, or whose workflow failed, before the row said so is shown as the workflow says (the order-api
    writes the row to match whenever it reads the workflow: ``Orders.reconcile``)."""
    caught_up = (
        workflow.finished_update(row["order_id"]) or workflow.failed_update(row["order_id"]) if workflow else None
    )
    if caught_up is not None and row["status"] not in TERMINAL and row["status"] != caught_up.status:
        row = {
            **row,
            "status": caught_up.status,
            "failure": caught_up.failure,
            "total_cents": row["total_cents"] if caught_up.total_cents is None else caught_up.total_cents,
        }
    if row["status"] in TERMINAL and row.get("saga"):
        saga = row["saga"]  # the final summary, the resolution's included
    else:
        saga = (workflow.summary if workflow is not None else None) or row.get("saga") or {}
    status = row["status"]
    if (
        status in (PENDING, RUNNING, AWAITING_APPROVAL)
        and workflow is not None
        and workflow.runtime_status == "RUNNING"
    ):
        # The records of RUNNING and AWAITING_APPROVAL may lag the workflow by a moment; the workflow says where it is.
        said = (workflow.custom_status or {}).get("status")
        status = said if said in (RUNNING, AWAITING_APPROVAL) else RUNNING
    stopped = (
        workflow
        if workflow is not None and workflow.runtime_status in ("FAILED", "TERMINATED", "STALLED", "SUSPENDED")
        else None
    )
    return Order(
        order_id=row["order_id"],
        status=status,
        customer_id=row["customer_id"],
        email=row["email"],
        total_cents=row["total_cents"] if row["total_cents"] is not None else saga.get("total_cents"),
        items=row["items"],
        steps=saga.get("steps", []),
        compensations=saga.get("compensations", []),
        failure=row["failure"] or (saga.get("failure") if status in TERMINAL else None),
        created_at=row["created_at"].isoformat(),
        updated_at=row["updated_at"].isoformat(),
        warnings=saga.get("warnings") or None,
        # Not a business outcome: the workflow itself stopped (a bug, an operator). The order needs a person.
        workflow={"runtime_status": stopped.runtime_status, "failure": stopped.failure}
        if stopped is not None
        else None,
        resolution=_resolution(resolution, row),
        approval=saga.get(APPROVAL) or None,
    )


def _resolution(resolution: WorkflowView | None, row: Mapping[str, Any]) -> dict[str, Any] | None:
    """What the operator's resolution did, from its workflow (live) or, once it recorded the outcome, the row."""
    summary = (row.get("saga") or {}).get("resolution")
    if not summary and resolution is not None:
        summary = resolution.summary or {"status": RUNNING}  # started; its first turn has not said anything yet
    if not summary:
        return None
    return {
        "status": summary.get("status"),
        "compensations": summary.get("compensations", []),
        "resolved_at": summary.get("resolved_at"),
    }
