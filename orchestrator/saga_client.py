"""The order-api's client of the workflow engine (daprd, or the sidecar locally): start an order's saga, read
its state, wait for it, cancel it, and read its history (``GetInstanceHistory``, which the SDK's client lacks:
called through its generated stubs). The saga itself is ``orchestrator.saga``; its registration,
``orchestrator.activities``.

Boundary: gRPC to the app's own engine (DAPR_GRPC_PORT, read by the SDK when the client is first used).
"""

from __future__ import annotations

import json
import math
import uuid
from collections.abc import Callable
from datetime import UTC
from typing import Any

import grpc
from dapr.conf import settings as dapr_settings
from dapr.conf.helpers import GrpcEndpoint
from dapr.ext.workflow._durabletask.internal import orchestrator_service_pb2_grpc as stubs
from dapr.ext.workflow._durabletask.internal import protos as pb
from dapr.ext.workflow._durabletask.internal import shared
from dapr.ext.workflow.aio import DaprWorkflowClient
from dapr.ext.workflow.util import getAddress
from google.protobuf import wrappers_pb2
from google.protobuf.timestamp_pb2 import Timestamp

from common import telemetry
from common.contracts import ORDER_SAGA, WAKE_EVENT
from common.runner import sdk_logger_options
from orchestrator.domain import (
    APPROVAL_EVENT,
    CANCEL_EVENT,
    RESOLVE_ORDER,
    WAKE_CHILD,
    OrderSagaInput,
    ResolveInput,
    WakeChildInput,
    resolution_id,
)
from orchestrator.views import WorkflowView


class SidecarUnavailable(Exception):
    """The workflow API could not be reached or answered with an unexpected error."""


class HistoryUnreadable(SidecarUnavailable):
    """daprd refuses to load the workflow's signed history: it no longer verifies (after daprd failed the workflow
    as tampered, every later read says so). No retry changes it."""


_UNREADABLE = "signature verification failed"


def _sdk_client() -> DaprWorkflowClient:
    return DaprWorkflowClient(logger_options=sdk_logger_options())


def _raw_stub() -> Any:
    """The generated gRPC stub, for the calls the SDK's client does not make (history, a start with a trace)."""
    uri = GrpcEndpoint(getAddress())  # where the SDK's client connects, read the same way
    if uri.tls:
        channel = grpc.aio.secure_channel(uri.endpoint, grpc.ssl_channel_credentials())
    else:
        channel = grpc.aio.insecure_channel(uri.endpoint)
    return stubs.TaskHubSidecarServiceStub(channel)  # type: ignore[no-untyped-call]  # generated, unannotated


# Results and failures in a history entry are cut to this many characters: a summary, not the payload.
SUMMARY_CHARS = 300


class SagaClient:
    """Schedules, inspects, waits for and cancels order sagas, and reads their history. The gRPC clients are
    created on first use, in the event loop that uses them (grpc.aio channels belong to one loop)."""

    def __init__(
        self, client_factory: Callable[[], Any] = _sdk_client, raw_factory: Callable[[], Any] = _raw_stub
    ) -> None:
        self._factory = client_factory
        self._client: Any = None
        self._raw_factory = raw_factory
        self._raw: Any = None

    @property
    def client(self) -> Any:
        if self._client is None:
            self._client = self._factory()
        return self._client

    async def schedule(self, saga_input: OrderSagaInput) -> bool:
        """Start the saga for an order; False when an instance with this ID is already active. Inside a traced
        request the saga joins its trace (the engine hands it to every activity)."""
        headers = telemetry.current_traceparent()
        try:
            if headers:
                await self._start_in_trace(saga_input, headers)
            else:
                await self.client.schedule_new_workflow(ORDER_SAGA, input=saga_input, instance_id=saga_input.order_id)
        except grpc.RpcError as err:
            if _code(err) == grpc.StatusCode.ALREADY_EXISTS:
                return False
            raise SidecarUnavailable(_describe(err)) from err
        return True

    @property
    def raw(self) -> Any:
        if self._raw is None:
            self._raw = self._raw_factory()
        return self._raw

    async def _start_in_trace(self, saga_input: OrderSagaInput, headers: dict[str, str]) -> None:
        """StartInstance with ``parentTraceContext`` set, which daprd and the sidecar both take as the workflow's
        trace. The SDK's client cannot set it, so this one call goes through the generated stub (``raw``)."""
        token = dapr_settings.DAPR_API_TOKEN
        traceparent = headers["traceparent"]
        state = headers.get("tracestate")
        await self.raw.StartInstance(
            pb.CreateInstanceRequest(
                name=ORDER_SAGA,
                instanceId=saga_input.order_id,
                input=wrappers_pb2.StringValue(value=shared.to_json(saga_input)),  # type: ignore[no-untyped-call]
                parentTraceContext=pb.TraceContext(
                    traceParent=traceparent,
                    spanID=traceparent.split("-")[2],
                    traceState=wrappers_pb2.StringValue(value=state) if state else None,
                ),
            ),
            metadata=(("dapr-api-token", token),) if token else None,
        )

    async def state(self, order_id: str) -> WorkflowView | None:
        return await self._state(order_id)

    async def resolve(self, request: ResolveInput) -> bool:
        """Start the operator's resolution of an order whose saga workflow failed; False when one is already
        there (running or done: resolutions are never repeated)."""
        instance_id = resolution_id(request.order_id)
        if await self._state(instance_id) is not None:
            return False
        try:
            await self.client.schedule_new_workflow(RESOLVE_ORDER, input=request, instance_id=instance_id)
        except grpc.RpcError as err:
            if _code(err) == grpc.StatusCode.ALREADY_EXISTS:
                return False
            raise SidecarUnavailable(_describe(err)) from err
        return True

    async def resolution(self, order_id: str) -> WorkflowView | None:
        """The operator's resolution of the order, if one was started."""
        return await self._state(resolution_id(order_id))

    async def _state(self, instance_id: str) -> WorkflowView | None:
        try:
            return _view(await self.client.get_workflow_state(instance_id, fetch_payloads=True))
        except grpc.RpcError as err:
            if _UNREADABLE in _describe(err):
                raise HistoryUnreadable(_describe(err)) from err
            raise SidecarUnavailable(_describe(err)) from err

    async def wait(self, order_id: str, timeout_seconds: float) -> WorkflowView | None:
        """The finished instance, or None when it is still running after ``timeout_seconds``."""
        try:
            state = await self.client.wait_for_workflow_completion(
                order_id, fetch_payloads=True, timeout_in_seconds=max(1, math.ceil(timeout_seconds))
            )
        except TimeoutError:
            return None
        except grpc.RpcError as err:
            if _code(err) == grpc.StatusCode.DEADLINE_EXCEEDED:
                return None
            raise SidecarUnavailable(_describe(err)) from err
        return _view(state)

    async def cancel(self, order_id: str, reason: str | None) -> None:
        try:
            await self.client.raise_workflow_event(order_id, CANCEL_EVENT, data={"reason": reason} if reason else None)
        except grpc.RpcError as err:
            raise SidecarUnavailable(_describe(err)) from err

    async def decide(self, order_id: str, decision: dict[str, Any]) -> None:
        """Raise a person's decision on an order awaiting approval (``{"approved": bool, "reviewer", "note"}``)."""
        data = {k: v for k, v in decision.items() if v is not None}
        try:
            await self.client.raise_workflow_event(order_id, APPROVAL_EVENT, data=data)
        except grpc.RpcError as err:
            raise SidecarUnavailable(_describe(err)) from err

    async def wake(self, order_id: str) -> None:
        """Raise WAKE_EVENT to the order's saga: an event makes the engine run an instance that waits."""
        try:
            await self.client.raise_workflow_event(order_id, WAKE_EVENT)
        except grpc.RpcError as err:
            raise SidecarUnavailable(_describe(err)) from err

    async def terminate(self, order_id: str) -> None:
        """Terminate the order's saga (and its children: the engine's terminate is recursive)."""
        try:
            await self.client.terminate_workflow(order_id)
        except grpc.RpcError as err:
            raise SidecarUnavailable(_describe(err)) from err

    async def wake_child(self, request: WakeChildInput) -> None:
        """Start a ``wake_child`` workflow for the order's child (``orchestrator.wake``); each start is a new one."""
        instance_id = f"{request.instance_id}:wake:{uuid.uuid4().hex[:12]}"
        try:
            await self.client.schedule_new_workflow(WAKE_CHILD, input=request, instance_id=instance_id)
        except grpc.RpcError as err:
            raise SidecarUnavailable(_describe(err)) from err

    async def history(self, order_id: str) -> list[dict[str, Any]] | None:
        """The instance's history events, oldest first, each as a short readable dict (``history_entry``);
        None when the engine has no such instance (never started, or purged)."""
        token = dapr_settings.DAPR_API_TOKEN
        try:
            response = await self.raw.GetInstanceHistory(
                pb.GetInstanceHistoryRequest(instanceId=order_id),
                metadata=(("dapr-api-token", token),) if token else None,
                timeout=30,
            )
        except grpc.RpcError as err:
            if _code(err) == grpc.StatusCode.NOT_FOUND:
                return None
            raise SidecarUnavailable(_describe(err)) from err
        return [history_entry(event) for event in response.events] or None


def history_entry(event: Any) -> dict[str, Any]:
    """One history event as the order-api shows it: its type (``TaskScheduled``, ``TimerFired``,
    ``ChildWorkflowInstanceCreated``, ...), when, the name of the activity, timer, event or workflow, the task it
    belongs to (a child workflow's creation and its end share one), where it ran and how it ended.
    Inputs are left out (they hold payment tokens and addresses); results are cut to a summary."""
    kind = event.WhichOneof("eventType") or "unknown"
    body: Any = getattr(event, kind, None)
    entry: dict[str, Any] = {
        "event_id": event.eventId,
        "type": kind[:1].upper() + kind[1:],
        "timestamp": _time(event.timestamp),
    }
    named = ("taskScheduled", "executionStarted", "eventRaised", "eventSent", "childWorkflowInstanceCreated")
    if kind in named and body.name:
        entry["name"] = body.name
    if kind == "executionStarted" and (trace := telemetry.trace_id(body.parentTraceContext.traceParent)):
        entry["trace_id"] = trace  # the trace the saga runs in (when traces are on), to look it up in a back end
    if kind in ("taskScheduled", "childWorkflowInstanceCreated"):
        entry["task_id"] = event.eventId
    elif kind in ("taskCompleted", "taskFailed", "childWorkflowInstanceCompleted", "childWorkflowInstanceFailed"):
        entry["task_id"] = body.taskScheduledId
    if kind == "childWorkflowInstanceCreated" and body.instanceId:
        entry["instance_id"] = body.instanceId
    elif kind == "timerCreated":
        entry["task_id"] = event.eventId
        entry["fire_at"] = _time(body.fireAt)
        if body.name:
            entry["name"] = body.name
        if origin := body.WhichOneof("origin"):
            entry["timer_origin"] = origin
    elif kind == "timerFired":
        entry["task_id"] = body.timerId
        entry["fire_at"] = _time(body.fireAt)
    if event.HasField("router") and event.router.targetAppID:
        entry["app"] = event.router.targetAppID
    if kind == "executionCompleted":
        entry["status"] = pb.OrchestrationStatus.Name(body.workflowStatus).removeprefix("ORCHESTRATION_STATUS_")
    if kind in ("taskCompleted", "childWorkflowInstanceCompleted", "executionCompleted") and body.HasField("result"):
        entry["result"] = _cut(body.result.value)
    failed = ("taskFailed", "childWorkflowInstanceFailed", "executionCompleted")
    if kind in failed and body.HasField("failureDetails"):
        failure = body.failureDetails
        text = f"{failure.errorType}: {failure.errorMessage}" if failure.errorType else failure.errorMessage
        entry["failure"] = _cut(text)
    return entry


def _time(stamp: Timestamp) -> str:
    return stamp.ToDatetime(tzinfo=UTC).isoformat()


def _cut(text: str) -> str:
    return text if len(text) <= SUMMARY_CHARS else text[: SUMMARY_CHARS - 1] + "…"


def _view(state: Any) -> WorkflowView | None:
    if state is None:
        return None
    details = getattr(state, "failure_details", None)
    failure = None
    if details is not None:
        failure = f"{details.error_type}: {details.message}" if details.error_type else details.message
    return WorkflowView(
        state.runtime_status.name, _json(state.serialized_custom_status), _json(state.serialized_output), failure
    )


def _json(raw: str | None) -> dict[str, Any] | None:
    if not raw:
        return None
    try:
        value = json.loads(raw)
    except ValueError:
        return None
    return value if isinstance(value, dict) else None


def _code(err: grpc.RpcError) -> Any:
    return err.code() if callable(getattr(err, "code", None)) else None


def _describe(err: grpc.RpcError) -> str:
    details = err.details() if callable(getattr(err, "details", None)) else str(err)
    return f"workflow API error {_code(err)}: {details}"
