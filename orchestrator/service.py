"""Order use cases: submit (idempotently), view, list, cancel, and record the saga's status transitions.

Each is one short transaction on the order-api's own database plus, where needed, one call to the workflow API.
The row is written before the workflow is scheduled, so a crash in between leaves a PENDING row that a repeated
submission (or the start-up sweep) schedules; nothing is ever started without a row.
"""

from __future__ import annotations

import logging
import uuid
from dataclasses import dataclass
from typing import Any

from common.contracts import SagaRetry
from common.db import Database
from common.idempotency import request_hash
from common.problems import bad_request, conflict, not_found, problem
from orchestrator import repository
from orchestrator.domain import PENDING, RUNNING, STATUSES, TERMINAL, OrderSagaInput, OrderStatusUpdate
from orchestrator.workflows import SidecarUnavailable, Workflows, WorkflowView

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Submitted:
    order: dict[str, Any]
    created: bool


class Orders:
    def __init__(self, db: Database, workflows: Workflows, retry: SagaRetry, wait_seconds: float) -> None:
        self.db, self.workflows, self.retry, self.wait_seconds = db, workflows, retry, wait_seconds

    async def submit(self, body: dict[str, Any], *, wait: bool) -> Submitted:
        """Store the order (PENDING) and start its saga. The same order_id with the same body returns the
        existing order and starts nothing; with a different body it is a 409."""
        order_id = body.get("order_id") or uuid.uuid4().hex
        request = {k: v for k, v in body.items() if k != "order_id"}
        fingerprint = request_hash(request)
        async with self.db.transaction() as session:
            row, created = await repository.insert_order(session, {
                "order_id": order_id, "request": request, "request_hash": fingerprint,
                "customer_id": request["customer_id"], "email": request["email"], "items": request["items"]})
        if not created and row["request_hash"] != fingerprint:
            raise conflict(f"order {order_id!r} exists with a different request body", order_id=order_id)
        if row["status"] == PENDING:
            await self._ensure_started(order_id)
        if wait:
            await self._reconcile(order_id, await self._sidecar(self.workflows.wait(order_id, self.wait_seconds)))
        return Submitted(await self.view(order_id), created)

    async def view(self, order_id: str) -> dict[str, Any]:
        """The order as stored, completed by what its workflow says about itself (steps, compensations)."""
        row = await self._row(order_id)
        try:
            workflow = await self.workflows.state(order_id)
        except SidecarUnavailable as err:
            # Still answer from the row (status, failure, final summary); only live progress is missing.
            log.warning("%s: showing the stored order only: %s", order_id, err)
            workflow = None
        row = await self._reconcile(order_id, workflow) or row
        return order_view(row, workflow)

    async def list(self, *, status: str | None, limit: int, cursor: str | None) -> dict[str, Any]:
        if status is not None and status not in STATUSES:
            raise bad_request(f"unknown status {status!r}; one of {', '.join(STATUSES)}")
        before = _parse_cursor(cursor)
        async with self.db.session() as session:
            rows = await repository.list_orders(session, status=status, limit=limit, before_seq=before)
        next_cursor = str(rows[-1]["seq"]) if len(rows) == limit else None
        return {"items": [order_view(r, None) for r in rows], "next_cursor": next_cursor}

    async def cancel(self, order_id: str, reason: str | None = None) -> dict[str, Any]:
        """Ask the saga to stop and unwind. 409 when the order already finished; the saga decides the rest:
        a cancel that arrives after its last forward step finished changes nothing."""
        row = await self._row(order_id)
        workflow = await self._sidecar(self.workflows.state(order_id))
        row = await self._reconcile(order_id, workflow) or row
        if row["status"] in TERMINAL:
            raise conflict(f"order {order_id!r} is already {row['status']}",
                           order_id=order_id, order_status=row["status"])
        if workflow is None:
            await self._ensure_started(order_id)  # the event then waits in the new instance
        await self._sidecar(self.workflows.cancel(order_id, reason))
        return order_view(row, workflow) | {"cancel_requested": True}

    async def resume_pending(self) -> int:
        """Start the sagas of PENDING orders whose workflow does not exist (a crash between insert and
        schedule). Called once at start-up; returns how many it started."""
        async with self.db.session() as session:
            order_ids = await repository.pending_order_ids(session)
        started = 0
        for order_id in order_ids:
            started += await self._ensure_started(order_id)
        return started

    def saga_input(self, row: dict[str, Any]) -> OrderSagaInput:
        request = row["request"]
        return OrderSagaInput.model_validate({
            "order_id": row["order_id"], "customer_id": request["customer_id"], "email": request["email"],
            "items": request["items"], "payment_token": request["payment"]["token"],
            "address": request["shipping_address"], "retry": self.retry.model_dump()})

    async def _ensure_started(self, order_id: str) -> bool:
        """Schedule the saga of a PENDING order unless its instance exists; True if this call started it.

        The row lock serialises concurrent starters (a repeated POST, the start-up sweep, a cancel). The
        instance check matters: the sidecar lets a *finished* instance ID be reused, so scheduling blindly
        could run a whole saga twice for an order whose RUNNING record has not landed yet.
        """
        try:
            async with self.db.transaction() as session:
                row = await repository.lock_order(session, order_id)
                if row is None or row["status"] != PENDING or await self.workflows.state(order_id) is not None:
                    return False
                return await self.workflows.schedule(self.saga_input(row))
        except SidecarUnavailable as err:
            raise problem(503, f"order {order_id!r} is stored but its workflow could not be started ({err}); "
                               "repeat the same request to start it", order_id=order_id) from err

    async def _reconcile(self, order_id: str, workflow: WorkflowView | None) -> dict[str, Any] | None:
        """If the workflow finished but its last status record did not land, write it now from its output."""
        summary = workflow.output if workflow is not None else None
        if not summary or summary.get("status") not in TERMINAL:
            return None
        update = OrderStatusUpdate(order_id, summary["status"], summary.get("failure"), summary.get("total_cents"),
                                   summary)
        if await record_status(self.db, update):
            log.info("%s: status reconciled from the workflow output: %s", order_id, update.status)
        return await self._row(order_id)

    async def _row(self, order_id: str) -> dict[str, Any]:
        async with self.db.session() as session:
            row = await repository.get_order(session, order_id)
        if row is None:
            raise not_found(f"no order {order_id!r}")
        return row

    @staticmethod
    async def _sidecar(call: Any) -> Any:
        try:
            return await call
        except SidecarUnavailable as err:
            raise problem(503, f"the workflow API is unavailable: {err}") from err


async def record_status(db: Database, update: OrderStatusUpdate) -> bool:
    """Apply one status transition of the saga (idempotent; see repository.record_status)."""
    async with db.transaction() as session:
        return await repository.record_status(session, update)


def order_view(row: dict[str, Any], workflow: WorkflowView | None) -> dict[str, Any]:
    """The public JSON of an order: the row, with steps and compensations from the live workflow if there is
    one, else from the summary stored when the saga finished."""
    saga = (workflow.summary if workflow is not None else None) or row.get("saga") or {}
    status = row["status"]
    if status == PENDING and workflow is not None and workflow.runtime_status == "RUNNING":
        status = RUNNING  # the RUNNING record may lag the workflow by a moment
    view = {
        "order_id": row["order_id"],
        "status": status,
        "customer_id": row["customer_id"],
        "email": row["email"],
        "total_cents": row["total_cents"] if row["total_cents"] is not None else saga.get("total_cents"),
        "items": row["items"],
        "steps": saga.get("steps", []),
        "compensations": saga.get("compensations", []),
        "failure": row["failure"] or (saga.get("failure") if status in TERMINAL else None),
        "created_at": row["created_at"].isoformat(),
        "updated_at": row["updated_at"].isoformat(),
    }
    if saga.get("warnings"):
        view["warnings"] = saga["warnings"]
    if workflow is not None and workflow.runtime_status in ("FAILED", "TERMINATED", "STALLED", "SUSPENDED"):
        # Not a business outcome: the workflow itself stopped (a bug, an operator). The order needs a person.
        view["workflow"] = {"runtime_status": workflow.runtime_status, "failure": workflow.failure}
    return view


def _parse_cursor(cursor: str | None) -> int | None:
    if cursor is None:
        return None
    if not cursor.isdigit() or int(cursor) < 1 or len(cursor) > 19:
        raise bad_request(f"invalid cursor {cursor!r}: use the next_cursor of the previous page")
    return int(cursor)
