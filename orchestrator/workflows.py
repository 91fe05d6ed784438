"""The order-api's handle on the sidecar's workflow API: the SDK's async client, reduced to what orders need.

Boundary: gRPC to the local sidecar (DAPR_GRPC_PORT, read by the SDK when the client is first used).
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable
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

from common import telemetry
from common.contracts import ORDER_SAGA
from common.runner import sdk_logger_options
from orchestrator.domain import CANCEL_EVENT, OrderSagaInput, WorkflowView


class SidecarUnavailable(Exception):
    """The workflow API could not be reached or answered with an unexpected error."""


def _sdk_client() -> DaprWorkflowClient:
    return DaprWorkflowClient(logger_options=sdk_logger_options())


class Workflows:
    """Schedules, inspects, waits for and cancels order sagas. The gRPC client is created on first use, in
    the event loop that uses it (grpc.aio channels belong to one loop)."""

    def __init__(self, client_factory: Callable[[], Any] = _sdk_client) -> None:
        self._factory = client_factory
        self._client: Any = None
        self._traced_stub: tuple[Any, tuple[tuple[str, str], ...]] | None = None

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

    async def _start_in_trace(self, saga_input: OrderSagaInput, headers: dict[str, str]) -> None:
        """StartInstance with ``parentTraceContext`` set, which daprd and the sidecar both take as the workflow's
        trace. The SDK's client cannot set it, so this one call goes through the generated stub, on a channel of
        its own with the same address and API token as the SDK's."""
        if self._traced_stub is None:
            endpoint = GrpcEndpoint(getAddress())
            token = dapr_settings.DAPR_API_TOKEN
            metadata: tuple[tuple[str, str], ...] = (("dapr-api-token", token),) if token else ()
            channel = grpc.aio.insecure_channel(endpoint.endpoint)
            stub = stubs.TaskHubSidecarServiceStub(channel)  # type: ignore[no-untyped-call]  # generated, unannotated
            self._traced_stub = (stub, metadata)
        stub, metadata = self._traced_stub
        traceparent = headers["traceparent"]
        state = headers.get("tracestate")
        await stub.StartInstance(
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
            metadata=metadata,
        )

    async def state(self, order_id: str) -> WorkflowView | None:
        try:
            return _view(await self.client.get_workflow_state(order_id, fetch_payloads=True))
        except grpc.RpcError as err:
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


def _view(state: Any) -> WorkflowView | None:
    if state is None:
        return None
    failure = state.failure_details.message if getattr(state, "failure_details", None) is not None else None
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
