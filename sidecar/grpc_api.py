"""``TaskHubSidecarService`` for one app ID, on the SDK's own generated protobuf modules.

Each app's listener gets its own servicer bound to its app ID, so an app sees only its own instances,
as with one daprd per app. The servicer translates requests to engine calls and engine refusals to
the gRPC status codes and messages daprd gives.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any, TypeAlias, TypeVar, cast

import grpc
from dapr.ext.workflow._durabletask.internal import orchestrator_service_pb2_grpc as pb_grpc
from dapr.ext.workflow._durabletask.internal import protos as pb
from google.protobuf import empty_pb2

from .client import Client
from .engine import Engine
from .model import EPOCH_ZERO, PENDING, TERMINAL, EngineError, Instance, timestamp, trace_context

log = logging.getLogger("sidecar.grpc")

_T = TypeVar("_T")
# A call's context: the servicer only reads its metadata and aborts through it, so its message types do not matter.
_Context: TypeAlias = grpc.aio.ServicerContext[Any, Any]


def workflow_state(inst: Instance, with_payloads: bool) -> pb.WorkflowState:
    status = inst.derive_status()
    pending = status == PENDING
    state = pb.WorkflowState(
        instanceId=inst.instance_id,
        name="" if pending else inst.name,
        workflowStatus=status,
        lastUpdatedTimestamp=timestamp(inst.updated),
    )
    if pending:
        state.createdTimestamp.FromDatetime(EPOCH_ZERO)
    else:
        state.createdTimestamp.CopyFrom(timestamp(inst.created))
    if with_payloads:
        if inst.input is not None:
            state.input.value = inst.input
        if inst.output is not None:
            state.output.value = inst.output
        if inst.custom_status is not None:
            state.customStatus.value = inst.custom_status
        if inst.failure:
            state.failureDetails.ParseFromString(inst.failure)
    return state


class WorkflowServicer(pb_grpc.TaskHubSidecarServiceServicer):
    def __init__(self, engine: Engine, app_id: str) -> None:
        self.engine = engine
        self.app_id = app_id
        self.client = Client(engine, app_id)

    async def _call(self, context: _Context, coro: Awaitable[_T], wrap: str = "") -> _T:
        """Await ``coro``; an EngineError aborts the call with its code and message, prefixed by ``wrap``
        unless it is a bad argument: daprd wraps the errors of its backend the same way."""
        try:
            return await coro
        except EngineError as exc:
            message = exc.message if exc.code == "INVALID_ARGUMENT" else wrap + exc.go_text()
            await context.abort(getattr(grpc.StatusCode, exc.code), message)

    # --- client -------------------------------------------------------------------------------------

    async def Hello(self, request: empty_pb2.Empty, context: _Context) -> empty_pb2.Empty:
        return empty_pb2.Empty()

    async def StartInstance(self, request: pb.CreateInstanceRequest, context: _Context) -> pb.CreateInstanceResponse:
        scheduled = None
        if request.HasField("scheduledStartTimestamp"):
            scheduled = request.scheduledStartTimestamp.ToNanoseconds() / 1e9
        # The caller's trace, from the request or else from its W3C headers, as daprd takes it.
        # gRPC gives bytes only for the keys ending in "-bin"; these two are text.
        metadata = cast("dict[str, str]", dict(context.invocation_metadata() or ()))
        trace = (
            request.parentTraceContext
            if request.HasField("parentTraceContext")
            else trace_context(metadata.get("traceparent"), metadata.get("tracestate"))
        )
        instance_id = await self._call(
            context,
            self.client.start(
                request.instanceId,
                request.name,
                request.input.value if request.HasField("input") else None,
                scheduled,
                request.version.value if request.HasField("version") else None,
                trace=trace,
            ),
            "failed to create workflow instance: ",
        )
        return pb.CreateInstanceResponse(instanceId=instance_id)

    async def GetInstance(self, request: pb.GetInstanceRequest, context: _Context) -> pb.GetInstanceResponse:
        inst = self.client.get(request.instanceId)
        if inst is None:
            return pb.GetInstanceResponse(exists=False)
        return pb.GetInstanceResponse(exists=True, workflowState=workflow_state(inst, request.getInputsAndOutputs))

    async def _wait(
        self, request: pb.GetInstanceRequest, predicate: Callable[[Instance], bool]
    ) -> pb.GetInstanceResponse:
        inst = await self.client.wait_for(request.instanceId, predicate)
        return pb.GetInstanceResponse(exists=True, workflowState=workflow_state(inst, request.getInputsAndOutputs))

    async def WaitForInstanceStart(self, request: pb.GetInstanceRequest, context: _Context) -> pb.GetInstanceResponse:
        return await self._wait(request, lambda i: i.derive_status() != PENDING)

    async def WaitForInstanceCompletion(
        self, request: pb.GetInstanceRequest, context: _Context
    ) -> pb.GetInstanceResponse:
        return await self._wait(request, lambda i: i.completed and i.status in TERMINAL)

    async def RaiseEvent(self, request: pb.RaiseEventRequest, context: _Context) -> pb.RaiseEventResponse:
        await self._call(
            context,
            self.client.raise_event(
                request.instanceId, request.name, request.input.value if request.HasField("input") else None
            ),
        )
        return pb.RaiseEventResponse()

    async def TerminateInstance(self, request: pb.TerminateRequest, context: _Context) -> pb.TerminateResponse:
        await self._call(
            context,
            self.client.terminate(
                request.instanceId, request.output.value if request.HasField("output") else None, request.recursive
            ),
            "failed to submit termination request: ",
        )
        return pb.TerminateResponse()

    async def SuspendInstance(self, request: pb.SuspendRequest, context: _Context) -> pb.SuspendResponse:
        await self._call(
            context,
            self.client.suspend(request.instanceId, request.reason.value if request.HasField("reason") else None),
        )
        return pb.SuspendResponse()

    async def ResumeInstance(self, request: pb.ResumeRequest, context: _Context) -> pb.ResumeResponse:
        await self._call(
            context,
            self.client.resume(request.instanceId, request.reason.value if request.HasField("reason") else None),
        )
        return pb.ResumeResponse()

    async def PurgeInstances(self, request: pb.PurgeInstancesRequest, context: _Context) -> pb.PurgeInstancesResponse:
        if request.HasField("purgeInstanceFilter"):
            await context.abort(grpc.StatusCode.UNIMPLEMENTED, "multi-instance purge is not implemented")
        count = await self._call(
            context, self.client.purge(request.instanceId, request.recursive), "failed to purge workflow state: "
        )
        return pb.PurgeInstancesResponse(deletedInstanceCount=count)

    async def ListInstanceIDs(
        self, request: pb.ListInstanceIDsRequest, context: _Context
    ) -> pb.ListInstanceIDsResponse:
        async def page() -> tuple[list[str], str | None]:
            return self.client.list_ids(
                request.pageSize if request.HasField("pageSize") else 0,
                request.continuationToken if request.HasField("continuationToken") else "",
            )

        ids, token = await self._call(context, page())
        response = pb.ListInstanceIDsResponse(instanceIds=ids)
        if token is not None:
            response.continuationToken = token
        return response

    async def GetInstanceHistory(
        self, request: pb.GetInstanceHistoryRequest, context: _Context
    ) -> pb.GetInstanceHistoryResponse:
        inst = self.client.get(request.instanceId)
        if inst is None:
            await context.abort(grpc.StatusCode.NOT_FOUND, f"workflow instance '{request.instanceId}' not found")
        return pb.GetInstanceHistoryResponse(events=inst.history)

    async def RerunWorkflowFromEvent(
        self, request: pb.RerunWorkflowFromEventRequest, context: _Context
    ) -> pb.RerunWorkflowFromEventResponse:
        await context.abort(grpc.StatusCode.UNIMPLEMENTED, "RerunWorkflowFromEvent is not implemented by this sidecar")

    # --- worker -------------------------------------------------------------------------------------

    async def GetWorkItems(self, request: pb.GetWorkItemsRequest, context: _Context) -> AsyncIterator[pb.WorkItem]:
        stream = self.engine.connect(self.app_id)
        try:
            while not stream.closed:
                item = await stream.queue.get()
                yield item
        finally:
            self.engine.disconnect(stream)

    async def CompleteActivityTask(self, request: pb.ActivityResponse, context: _Context) -> pb.CompleteTaskResponse:
        self.engine.complete_activity(self.app_id, request)
        return pb.CompleteTaskResponse()

    async def CompleteOrchestratorTask(
        self, request: pb.WorkflowResponse, context: _Context
    ) -> pb.CompleteTaskResponse:
        self.engine.complete_turn(self.app_id, request)
        return pb.CompleteTaskResponse()

    CompleteWorkflowTask = CompleteOrchestratorTask
