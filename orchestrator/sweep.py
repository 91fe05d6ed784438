"""The reconcile sweep: every so often the order-api reads the orders still going (PENDING, RUNNING, awaiting
approval) whose rows have been quiet, and brings each row up to what its workflow says. On the way it wakes a saga
the engine created but never ran, asks a child workflow's app to wake a child whose start was dropped
(``orchestrator.wake``), and stops a saga whose step in flight has not moved for ``stall_after`` (for an operator).

State in memory (which sagas it woke, what it last saw of each saga in flight): a restart of the order-api forgets it,
so a dead saga or a stall is then seen one sweep, or one ``stall_after``, later.
"""

from __future__ import annotations

import hashlib
import json
import logging
import time
from datetime import timedelta

from orchestrator import repository
from orchestrator.domain import DEFAULT_STALL_AFTER, TERMINAL, WakeChildInput
from orchestrator.saga_client import HistoryUnreadable, SidecarUnavailable
from orchestrator.service import Orders
from orchestrator.views import WorkflowView

log = logging.getLogger(__name__)
# What the stall rule adds to a concluded saga's warnings when it stops it and keeps its ending (the chaos checker
# reads it).
STOPPED_AS_CONCLUDED = "stopped, as concluded"


class Sweep:
    """The order-api's sweep over its quiet orders (``run``, every ``RECONCILE_INTERVAL_SECONDS``), with what it
    remembers between runs."""

    def __init__(self, orders: Orders, stall_after: timedelta = DEFAULT_STALL_AFTER) -> None:
        self.orders, self.stall_after = orders, stall_after
        self._woken: set[str] = set()  # sagas this sweep woke; still PENDING at the next: dead
        # What the sweep last saw of each saga with a step in flight (its custom status, hashed) and since when.
        self._progress: dict[str, tuple[str, float]] = {}

    async def run(self, older_than: timedelta, limit: int = 100) -> int:
        """Bring the rows of orders still going (PENDING, RUNNING, awaiting approval) that have not changed for
        ``older_than`` up to what their workflows say: a saga's end that nobody recorded (the order-api records it
        from the saga's output, after a wait or by a watcher; a restart loses the watchers, a write can fail), or a
        workflow that failed outside the saga (which records nothing). Returns how many rows changed.

        A saga the engine created but never ran (still PENDING by now) is woken with an event: daprd 1.18.2 creates
        an instance's start reminder before it saves the instance, so a reminder that fires first finds nothing,
        is dropped ("No workflow state found"), and leaves the instance saved, waiting for a reminder that is gone;
        an event raised to it saves a new one. One still PENDING at the next sweep is recorded WORKFLOW_FAILED. A
        saga quiet while a child workflow runs has the child's app wake the child likewise (``orchestrator.wake``)."""
        async with self.orders.db.session() as session:
            order_ids = await repository.quiet_order_ids(session, older_than, limit)
        # Only this sweep's sagas are watched for progress (the oldest quiet ones: a stalled saga stays among them).
        self._progress = {o: seen for o, seen in self._progress.items() if o in order_ids}
        changed = 0
        for order_id in order_ids:
            row = await self.orders.row(order_id)
            try:
                workflow = await self.orders.sagas.state(order_id)
            except HistoryUnreadable as err:
                # Failed as tampered (or rewritten since) and unreadable from then on; a reader that came first
                # would have recorded the failure with the saga's steps: this order has been quiet since.
                workflow = WorkflowView("FAILED", None, None, f"DAPR_WORKFLOW_HISTORY_TAMPERED: {err}")
            if workflow is not None and (child := workflow.child_in_flight()) is not None:
                # Quiet while its child runs: the child's start may have been dropped as a saga's can (above), and
                # only the child's app can wake it.
                app_id, child_id = child
                log.info(
                    "%s: quiet while its child %s runs; asking %s to wake it if it never ran",
                    order_id,
                    child_id,
                    app_id,
                )
                try:
                    await self.orders.sagas.wake_child(WakeChildInput(order_id, app_id, child_id))
                except SidecarUnavailable as err:  # the next sweep asks again
                    log.warning("%s: could not start the wake of its child: %s", order_id, err)
            if workflow is not None and (stalled := self._stalled(order_id, workflow)) is not None:
                workflow = await self._stop_stalled(order_id, workflow, stalled)
            if workflow is None or workflow.runtime_status != "PENDING":
                self._woken.discard(order_id)
            elif order_id in self._woken:
                # Woken a sweep ago and still PENDING: daprd 1.18.2 also shows a workflow it tombstoned as tampered
                # before its first turn was saved as PENDING, and drops every work item for it ("workflow state is
                # invalid"). Nothing will run it: an operator's to resolve.
                self._woken.discard(order_id)
                reason = "the engine keeps it PENDING and drops its work items (a wake did not start it)"
                workflow = WorkflowView("FAILED", workflow.custom_status, None, reason)
            else:
                log.warning("%s: its saga was created but has not started; waking it with an event", order_id)
                self._woken.add(order_id)
                await self.orders.sagas.wake(order_id)
                continue
            if (await self.orders.reconcile(row, workflow))["status"] != row["status"]:
                changed += 1
        return changed

    def _stalled(self, order_id: str, workflow: WorkflowView) -> str | None:
        """The step a running saga has shown in flight, with nothing else changed, for ``stall_after``, else None."""
        step = workflow.step_in_flight()
        if step is None:
            self._progress.pop(order_id, None)
            return None
        seen = hashlib.sha256(json.dumps(workflow.custom_status, sort_keys=True).encode()).hexdigest()
        now = time.monotonic()
        last, since = self._progress.get(order_id, (None, now))
        if last != seen:
            self._progress[order_id] = (seen, now)
            return None
        return step if now - since >= self.stall_after.total_seconds() else None

    async def _stop_stalled(self, order_id: str, workflow: WorkflowView, step: str) -> WorkflowView:
        """Terminate a saga whose step in flight has not moved for ``stall_after`` and return it as the sweep records
        it: stopped outside the saga, WORKFLOW_FAILED, for the operator's resolution (its undos leave tombstones, so a
        step that does land later does nothing); or, if the saga had already concluded (the step is its notification),
        with that conclusion. On daprd 1.18.2 a step's result can be lost: two replicas' daprds briefly both hosting a
        workflow, one of them tombstones it in memory on a history it loaded too early, and the activity's answer is
        dropped ("workflow actor instance not found"); nothing would ever run the saga."""
        self._progress.pop(order_id, None)
        seconds = round(self.stall_after.total_seconds())
        said = workflow.custom_status or {}
        concluded = said.get("status") in TERMINAL
        then = STOPPED_AS_CONCLUDED if concluded else "stopped for an operator"
        reason = f"no progress for {seconds} s with {step} in flight (its result was lost); {then}"
        log.warning("%s: %s", order_id, reason)
        try:
            await self.orders.sagas.terminate(order_id)
        except SidecarUnavailable as err:  # recorded all the same: the resolution is safe beside a live saga
            log.warning("%s: could not terminate its saga: %s", order_id, err)
        ending = {**said, "warnings": [*said.get("warnings", []), f"{step}: {reason}"]} if concluded else None
        return WorkflowView("TERMINATED", workflow.custom_status, ending, reason)
