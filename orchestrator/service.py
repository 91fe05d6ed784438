"""Order use cases: submit (idempotently), view, list, cancel, approve or reject an order awaiting approval, resolve
(an operator's way out of a failed saga workflow), and record the saga's status transitions, catching up with what
the workflows say.

Typed values in and out, domain errors (``orchestrator.domain``) for what they refuse; no HTTP here. Each is one
short transaction on the order-api's own database plus, where needed, calls to the workflow API, never inside a
transaction. The row is written before the workflow is scheduled, so a crash in between leaves a PENDING row that
a repeated submission (or the start-up sweep) schedules; nothing is ever started without a row.
"""

from __future__ import annotations

import asyncio
import logging
import uuid
from collections.abc import Awaitable
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from typing import Any, TypeVar

from common.contracts import SagaRetry
from common.db import Database
from common.idempotency import request_hash
from orchestrator import repository
from orchestrator.domain import (
    AWAITING_APPROVAL,
    DEFAULT_APPROVAL_TIMEOUT_SECONDS,
    PENDING,
    RUNNING,
    SETTLED,
    STATUSES,
    TERMINAL,
    WORKFLOW_FAILED,
    InvalidListing,
    NewOrder,
    OrderConflict,
    OrderNotFound,
    OrderSagaInput,
    OrderStatusUpdate,
    ResolveInput,
    WorkflowUnavailable,
    parse_cursor,
)
from orchestrator.saga_client import SagaClient, SidecarUnavailable
from orchestrator.views import Order, OrderListing, WorkflowView, order_view

log = logging.getLogger(__name__)
T = TypeVar("T")

# How long a claim to start an order's saga keeps other starters away. Starting takes two quick calls to the
# workflow API; a claim older than this belongs to a starter that died, and another may take it over.
START_CLAIM_TTL = timedelta(seconds=10)
# How long one wait of a watcher lasts before it waits again (a saga nobody waits for, see Orders._watch).
WATCH_SECONDS = 300.0


@dataclass(frozen=True)
class Submitted:
    order: Order
    created: bool


class Orders:
    def __init__(
        self,
        db: Database,
        sagas: SagaClient,
        retry: SagaRetry,
        wait_seconds: float,
        claim_ttl: timedelta = START_CLAIM_TTL,
        approval_timeout_seconds: float = DEFAULT_APPROVAL_TIMEOUT_SECONDS,
    ) -> None:
        self.db, self.sagas, self.retry, self.wait_seconds = db, sagas, retry, wait_seconds
        self.claim_ttl = claim_ttl
        self._watchers: set[asyncio.Task[None]] = set()
        self.approval_timeout_seconds = approval_timeout_seconds

    async def submit(self, order: NewOrder, *, wait: bool) -> Submitted:
        """Store the order (PENDING) and start its saga. The same order_id with the same body returns the
        existing order and starts nothing; with a different body it is an OrderConflict."""
        order_id = order.order_id or uuid.uuid4().hex
        request = order.request()
        fingerprint = request_hash(request)
        async with self.db.transaction() as session:
            row, created = await repository.insert_order(
                session,
                {
                    "order_id": order_id,
                    "request": request,
                    "request_hash": fingerprint,
                    "customer_id": order.customer_id,
                    "email": order.email,
                    "items": request["items"],
                },
            )
        if not created and row["request_hash"] != fingerprint:
            raise OrderConflict(f"order {order_id!r} exists with a different request body", order_id=order_id)
        started = False
        if row["status"] == PENDING:
            started = await self._ensure_started(order_id, fresh=created)
        # An order already over, or stopped for an operator (WORKFLOW_FAILED), is answered as stored: nothing more
        # comes of a wait, and daprd may fail every wait on a workflow it tombstoned (a 503 for a settled order).
        workflow = None
        if wait and row["status"] not in SETTLED:
            workflow = await _engine(self.sagas.wait(order_id, self.wait_seconds))
        if started and workflow is None:
            self._watch(order_id)  # nobody waits for its end here (any more): record it when it comes
        if workflow is None:
            workflow = await self._live_state(order_id)
        row = await self.reconcile(await self.row(order_id), workflow)
        return Submitted(order_view(row, workflow), created)

    def _watch(self, order_id: str) -> None:
        """Record the order's terminal status when its saga ends, for a saga this call started and nobody waits
        for (the saga does not record its own end). Best effort: a restart or an engine error loses the
        watcher, and the reconcile sweep (``orchestrator.sweep``) catches the row up instead."""
        task = asyncio.get_running_loop().create_task(self._record_when_finished(order_id))
        self._watchers.add(task)
        task.add_done_callback(self._watchers.discard)

    async def _record_when_finished(self, order_id: str) -> None:
        try:
            while (workflow := await self.sagas.wait(order_id, WATCH_SECONDS)) is None:
                pass
            if workflow.finished_update(order_id) is not None:
                # The saga concluded: its terminal status, from its output. A workflow that stopped outside the
                # saga (terminated, failed) is left to reads and the sweep.
                await self.reconcile(await self.row(order_id), workflow)
        except Exception as err:  # the sweep covers it
            log.info("%s: watcher stopped (%s); the reconcile sweep will record the end", order_id, err)

    def stop_watching(self) -> None:
        """Cancel the watchers (at shutdown; the reconcile sweep of the next start covers what they would record)."""
        for task in self._watchers:
            task.cancel()

    async def view(self, order_id: str) -> Order:
        """The order as stored, completed by what its workflow says about itself (steps, compensations), and the
        operator's resolution if the workflow failed. The row is brought up to date when the workflow finished or
        failed without the row saying so (``reconcile``)."""
        row = await self.row(order_id)
        workflow = await self._live_state(order_id)
        row = await self.reconcile(row, workflow)
        resolution = await self._live_resolution(order_id) if _needs_resolution(row, workflow) else None
        return order_view(row, workflow, resolution)

    async def resolve(self, order_id: str) -> Order:
        """An operator's way out for an order whose saga workflow failed outside the saga (WORKFLOW_FAILED): start
        its resolution, which runs every undo and records the outcome. OrderConflict when the order is not
        WORKFLOW_FAILED; asking again while the resolution runs starts nothing and answers the same."""
        row = await self.row(order_id)
        if row["status"] == WORKFLOW_FAILED:
            # The failure is recorded, and the undos need nothing more from the workflow, whose history may be
            # unreadable now: daprd refuses to load a history that fails its signature check.
            workflow = await self._live_state(order_id)
        else:
            workflow = await _engine(self.sagas.state(order_id))
            row = await self.reconcile(row, workflow)
        if row["status"] != WORKFLOW_FAILED:
            raise OrderConflict(
                f"order {order_id!r} is {row['status']}: only a WORKFLOW_FAILED order is resolved by an operator",
                order_id=order_id,
                order_status=row["status"],
            )
        request = ResolveInput(
            order_id=order_id,
            email=row["email"],
            cause=row["failure"] or {"step": "workflow", "reason": "the workflow failed"},
            saga=(workflow.summary if workflow is not None else None) or row.get("saga"),
            retry=self.retry,
        )
        if await _engine(self.sagas.resolve(request)):
            log.warning("%s: resolution started by an operator (%s)", order_id, request.cause["reason"])
        return order_view(row, workflow, await _engine(self.sagas.resolution(order_id)))

    async def history(self, order_id: str) -> list[dict[str, Any]]:
        """The events of the order's workflow, oldest first (``SagaClient.history``). OrderNotFound when there is
        no such order or its workflow is gone (purged, or not started yet)."""
        await self.row(order_id)
        events = await _engine(self.sagas.history(order_id))
        if events is None:
            raise OrderNotFound(
                f"order {order_id!r} has no workflow history: its workflow was purged or has not started",
                order_id=order_id,
            )
        return events

    async def list(self, *, status: str | None, limit: int, cursor: str | None) -> OrderListing:
        if status is not None and status not in STATUSES:
            raise InvalidListing(f"unknown status {status!r}; one of {', '.join(STATUSES)}")
        before = parse_cursor(cursor)
        async with self.db.session() as session:
            rows = await repository.list_orders(session, status=status, limit=limit, before_seq=before)
        next_cursor = str(rows[-1]["seq"]) if len(rows) == limit else None
        return OrderListing([order_view(r, None) for r in rows], next_cursor)

    async def cancel(self, order_id: str, reason: str | None = None) -> Order:
        """Ask the saga to stop and unwind. OrderConflict when the order already finished or its workflow failed;
        the saga decides the rest: a cancel that arrives after its last forward step finished changes nothing."""
        row = await self.row(order_id)
        workflow = await _engine(self.sagas.state(order_id))
        row = await self.reconcile(row, workflow)
        if row["status"] in TERMINAL:
            raise OrderConflict(
                f"order {order_id!r} is already {row['status']}", order_id=order_id, order_status=row["status"]
            )
        if row["status"] == WORKFLOW_FAILED:
            raise OrderConflict(
                f"order {order_id!r} is WORKFLOW_FAILED: its workflow stopped and cannot take a cancel; an operator "
                f"resolves it (POST /orders/{order_id}/resolve), which undoes it",
                order_id=order_id,
                order_status=row["status"],
            )
        if workflow is None and await self._ensure_started(order_id):  # the event then waits in the new instance
            self._watch(order_id)
        await _engine(self.sagas.cancel(order_id, reason))
        return replace(order_view(row, workflow), cancel_requested=True)

    async def decide(
        self, order_id: str, approved: bool, reviewer: str | None = None, note: str | None = None
    ) -> Order:
        """A person's decision on an order the risk review left to them (raised to the saga, which decides what it
        changes). OrderConflict when the order is not awaiting approval, or its deadline has passed (the saga
        rejects it then)."""
        row = await self.row(order_id)
        workflow = await _engine(self.sagas.state(order_id))
        row = await self.reconcile(row, workflow)
        view = order_view(row, workflow)
        if view.status != AWAITING_APPROVAL or view.approval is None:
            raise OrderConflict(
                f"order {order_id!r} is not awaiting approval (it is {view.status})",
                order_id=order_id,
                order_status=view.status,
            )
        deadline = datetime.fromisoformat(view.approval["deadline"])
        if datetime.now(UTC) >= deadline:
            raise OrderConflict(
                f"the approval deadline of order {order_id!r} passed at {deadline.isoformat()}: it is being rejected",
                order_id=order_id,
                order_status=view.status,
            )
        await _engine(self.sagas.decide(order_id, {"approved": approved, "reviewer": reviewer, "note": note}))
        return replace(view, decision_requested="approve" if approved else "reject")

    async def resume_pending(self) -> int:
        """Start the sagas of PENDING orders whose workflow does not exist (a crash between insert and
        schedule). Called at start-up; returns how many it started."""
        async with self.db.session() as session:
            order_ids = await repository.pending_order_ids(session)
        started = 0
        for order_id in order_ids:
            if await self._ensure_started(order_id):
                self._watch(order_id)
                started += 1
        return started

    def saga_input(self, row: dict[str, Any]) -> OrderSagaInput:
        request = row["request"]
        return OrderSagaInput.model_validate(
            {
                "order_id": row["order_id"],
                "customer_id": request["customer_id"],
                "email": request["email"],
                "items": request["items"],
                "payment_token": request["payment"]["token"],
                "address": request["shipping_address"],
                "retry": self.retry.model_dump(),
                "approval_timeout_seconds": self.approval_timeout_seconds,
            }
        )

    async def _ensure_started(self, order_id: str, *, fresh: bool = False) -> bool:
        """Schedule the saga of a PENDING order unless its instance exists; True if this call started it.

        Concurrent starters (a repeated POST, the start-up sweep, a cancel) are kept apart by a claim on the row,
        taken and committed before the workflow API is called, so no lock is held across a network call. The
        instance check matters: the engine lets a *finished* instance ID be reused, so scheduling blindly could
        run a whole saga twice for an order whose RUNNING record has not landed yet. ``fresh``: this very call
        inserted the row, so no saga can have run for it and the check is skipped (an instance of the same ID
        left from before, if any, is a finished one of another order, and is reused).
        """
        async with self.db.transaction() as session:
            row = await repository.claim_start(session, order_id, self.claim_ttl)
        if row is None:
            return False  # not PENDING, or another starter is at it
        try:
            if not fresh and await self.sagas.state(order_id) is not None:
                return False
            started = await self.sagas.schedule(self.saga_input(row))
        except BaseException as err:
            # Whatever stopped this start, the next starter need not wait for the claim to expire. (A process
            # that dies here leaves its claim: the start-up sweep comes back for it once it is stale.)
            async with self.db.transaction() as session:
                await repository.release_start(session, order_id)
            if isinstance(err, SidecarUnavailable):
                raise WorkflowUnavailable(
                    f"order {order_id!r} is stored but its workflow could not be started ({err}); "
                    "repeat the same request to start it",
                    order_id=order_id,
                ) from err
            raise
        if started:
            # The saga is running (the start returns once its first turn has run), so the order is. The saga does
            # not record it: one activity and one workflow turn fewer per order (orchestrator.saga's patch).
            # Bookkeeping only: if it fails, views still show RUNNING (from the workflow) and the terminal record
            # (from the saga's output, ``reconcile``) moves the row on from PENDING.
            try:
                await record_status(self.db, OrderStatusUpdate(order_id, RUNNING))
            except Exception as err:
                log.warning("%s: the RUNNING record failed (%s); the terminal record will move the row", order_id, err)
        return started

    async def reconcile(self, row: dict[str, Any], workflow: WorkflowView | None) -> dict[str, Any]:
        """The row, brought up to date first if the workflow finished (its terminal status, written from its
        output: the saga does not record its own end; a saga started before orchestrator.saga's patch does, and then
        this finds nothing to write), or
        the workflow failed outside the saga (WORKFLOW_FAILED, with the engine's reason). A terminal row never
        changes, so it is returned as it is, unwritten."""
        order_id = row["order_id"]
        update = None
        if workflow is not None:
            update = workflow.finished_update(order_id) or workflow.failed_update(order_id)
        if update is None or row["status"] in TERMINAL or row["status"] == update.status:
            return row
        async with self.db.transaction() as session:
            updated = await repository.record_status_returning(session, update)
        if updated is not None:
            if update.status == WORKFLOW_FAILED:
                log.warning("%s: status reconciled from the workflow: %s %s", order_id, update.status, update.failure)
            return updated
        return await self.row(order_id)

    async def _live_resolution(self, order_id: str) -> WorkflowView | None:
        try:
            return await self.sagas.resolution(order_id)
        except SidecarUnavailable as err:
            log.warning("%s: showing the stored resolution only: %s", order_id, err)
            return None

    async def _live_state(self, order_id: str) -> WorkflowView | None:
        """What the workflow says now; None when the engine is unreachable: the row (status, failure, final
        summary) still answers, only live progress is missing."""
        try:
            return await self.sagas.state(order_id)
        except SidecarUnavailable as err:
            log.warning("%s: showing the stored order only: %s", order_id, err)
            return None

    async def row(self, order_id: str) -> dict[str, Any]:
        async with self.db.session() as session:
            row = await repository.get_order(session, order_id)
        if row is None:
            raise OrderNotFound(f"no order {order_id!r}")
        return row


def _needs_resolution(row: dict[str, Any], workflow: WorkflowView | None) -> bool:
    """Whether an operator's resolution may exist for the order: its workflow failed outside the saga."""
    return row["status"] == WORKFLOW_FAILED or (workflow is not None and workflow.stopped_outside_the_saga)


async def _engine(call: Awaitable[T]) -> T:
    try:
        return await call
    except SidecarUnavailable as err:
        raise WorkflowUnavailable(f"the workflow API is unavailable: {err}") from err


async def record_status(db: Database, update: OrderStatusUpdate) -> bool:
    """Apply one status transition of the saga (idempotent; see repository.record_status)."""
    async with db.transaction() as session:
        return await repository.record_status(session, update)
