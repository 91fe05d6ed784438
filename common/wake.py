"""Waking a workflow the engine created but never ran: ``wake_if_pending`` raises ``WAKE_EVENT`` to it.

daprd 1.18.2 creates an instance's start reminder before it saves the instance (create.go scheduleWorkflowStart); a
reminder that fires first finds nothing and is dropped ("No workflow state found ... terminating execution"), and
the instance, saved a moment later, waits as PENDING for a reminder that is gone. An event raised to it saves a new
reminder, and the workflow runs (the event itself is kept in its history and never read). Only the workflow's own
app can raise it (an app's daprd reaches only its own workflows): the order-api's reconcile sweep wakes its sagas
itself, and a saga's child on another app through that app's ``WAKE_WORKFLOW`` activity.
"""

from __future__ import annotations

import grpc
from dapr.ext.workflow.aio import DaprWorkflowClient

from common.contracts import WAKE_EVENT, WakeResult
from common.runner import sdk_logger_options


class Waker:
    """Wakes this app's own workflows through its sidecar. Create it on the event loop that uses it (the client's
    channel belongs to that loop): the first call makes the client."""

    def __init__(self) -> None:
        self._client: DaprWorkflowClient | None = None

    async def wake_if_pending(self, instance_id: str) -> WakeResult:
        """Raise WAKE_EVENT to ``instance_id`` if the engine shows it PENDING; anything else is left alone (a
        running or finished workflow needs no wake, and an event raised to one that does not exist fails)."""
        if self._client is None:
            self._client = DaprWorkflowClient(logger_options=sdk_logger_options())
        state = await self._client.get_workflow_state(instance_id, fetch_payloads=False)
        status = state.runtime_status.name if state is not None else None
        if status != "PENDING":
            return WakeResult(status, woken=False)
        try:
            await self._client.raise_workflow_event(instance_id, WAKE_EVENT)
        except grpc.RpcError as err:
            if err.code() == grpc.StatusCode.NOT_FOUND:  # purged meanwhile
                return WakeResult(None, woken=False)
            raise
        return WakeResult(status, woken=True)
