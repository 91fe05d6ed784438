"""Dapr's HTTP endpoints that apps and people use with workflows, for one app ID: health probes and
the workflow management API (``/v1.0/workflows/dapr/...``, also under ``v1.0-beta1`` and
``v1.0-alpha1`` as daprd registers them). Served by uvicorn on the engine's event loop.

As daprd 1.18 does, start, pause, resume and terminate answer 202 once the request is recorded, without
waiting for the workflow to act on it; errors have daprd's codes and texts."""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from collections.abc import Awaitable, Callable, Iterator
from datetime import UTC, datetime
from typing import Any

import uvicorn
from litestar import Litestar, Request, Response, get, post
from litestar.exceptions import HTTPException
from litestar.handlers import HTTPRouteHandler

from .api_token import TokenMiddleware
from .client import Client
from .engine import Engine
from .model import PENDING, EngineError, Instance, status_name, trace_context

_PREFIXES = ("v1.0", "v1.0-beta1", "v1.0-alpha1")
_NOT_FOUND = "ERR_INSTANCE_ID_NOT_FOUND"


def _iso(t: float) -> str:
    return datetime.fromtimestamp(t, tz=UTC).isoformat().replace("+00:00", "Z")


def _error(code: str, message: str, status: int) -> Response[dict[str, str]]:
    return Response({"errorCode": code, "message": message}, status_code=status)


def _metadata(inst: Instance) -> dict[str, str | dict[str, str]]:
    status = inst.derive_status()
    props: dict[str, str] = {}
    if inst.input is not None:
        props["dapr.workflow.input"] = inst.input
    if inst.output is not None:
        props["dapr.workflow.output"] = inst.output
    if inst.custom_status is not None:
        props["dapr.workflow.custom_status"] = inst.custom_status
    if inst.failure:
        from dapr.ext.workflow._durabletask.internal import protos as pb

        failure = pb.TaskFailureDetails.FromString(inst.failure)
        props["dapr.workflow.failure.error_type"] = failure.errorType
        props["dapr.workflow.failure.error_message"] = failure.errorMessage
    return {
        "instanceID": inst.instance_id,
        "workflowName": "" if status == PENDING else inst.name,
        "createdAt": _iso(inst.created),
        "lastUpdatedAt": _iso(inst.updated),
        "runtimeStatus": status_name(status),
        "properties": props,
    }


def _not_found(instance_id: str, cause: str | None = None) -> Response[dict[str, str]]:
    message = f"unable to find workflow with the provided instance ID: {instance_id}"
    if cause is not None:
        # daprd 1.18 passes the cause to a format string without a verb for it; Go prints it this way.
        message += f"%!(EXTRA *fmt.wrapError={cause})"
    return _error(_NOT_FOUND, message, 404)


def create_http_app(engine: Engine, app_id: str) -> Litestar:
    client = Client(engine, app_id)

    async def call(coro: Awaitable[object], error_code: str, wrap: str) -> Response[dict[str, str]] | None:
        """Await ``coro``; an EngineError becomes daprd's error body: 400 for a bad argument, else 500 with
        the error behind daprd's ``wrap`` (a duplicate start included: daprd answers it with 500 too)."""
        try:
            await coro
        except EngineError as exc:
            if exc.code == "INVALID_ARGUMENT":
                return _error(error_code, exc.message, 400)
            return _error(error_code, wrap + exc.go_text(), 500)
        return None

    async def body_text(request: Request[Any, Any, Any]) -> str | None:
        raw = await request.body()
        return raw.decode() if raw else None

    @get([f"/{p}/healthz" for p in _PREFIXES[:1]] + ["/v1.0/healthz/outbound"], status_code=204, sync_to_thread=False)
    def healthz() -> None:
        return None

    @post([f"/{p}/workflows/dapr/{{name:str}}/start" for p in _PREFIXES], status_code=202)
    async def start(name: str, request: Request[Any, Any, Any]) -> Response[Any]:
        instance_id = request.query_params.get("instanceID") or uuid.uuid4().hex
        trace = trace_context(request.headers.get("traceparent"), request.headers.get("tracestate"))
        err = await call(
            client.start(instance_id, name, await body_text(request), wait=False, trace=trace),
            "ERR_START_WORKFLOW",
            f"error starting workflow '{name}': unable to start workflow: failed to start workflow: ",
        )
        return err or Response({"instanceID": instance_id}, status_code=202)

    @get([f"/{p}/workflows/dapr/{{instance_id:str}}" for p in _PREFIXES])
    async def get_workflow(instance_id: str) -> Response[Any]:
        inst = client.get(instance_id)
        if inst is None:
            return _not_found(instance_id)
        return Response(_metadata(inst))

    @post([f"/{p}/workflows/dapr/{{instance_id:str}}/raiseEvent/{{event:str}}" for p in _PREFIXES], status_code=202)
    async def raise_event(instance_id: str, event: str, request: Request[Any, Any, Any]) -> Response[Any]:
        err = await call(
            client.raise_event(instance_id, event, await body_text(request)),
            "ERR_RAISE_EVENT_WORKFLOW",
            f"error raising event on workflow '{instance_id}': failed to raise event {event} on workflow "
            f"{instance_id}: failed to raise event: ",
        )
        return err or Response(None, status_code=202)

    def management(
        action: str,
        error_code: str,
        run: Callable[[str, Request[Any, Any, Any]], Awaitable[object]],
        wrap: str,
        not_found_cause: str | None = None,
    ) -> HTTPRouteHandler:
        """``wrap`` is daprd's error prefix (``{id}`` is the instance ID); with ``not_found_cause`` an unknown
        instance is a 404 naming that cause, as daprd answers terminate and purge."""

        @post([f"/{p}/workflows/dapr/{{instance_id:str}}/{action}" for p in _PREFIXES], status_code=202, name=action)
        async def handler(instance_id: str, request: Request[Any, Any, Any]) -> Response[Any]:
            if not_found_cause is not None and client.get(instance_id) is None:
                return _not_found(instance_id, not_found_cause)
            err = await call(run(instance_id, request), error_code, wrap.format(id=instance_id))
            return err or Response(None, status_code=202)

        return handler

    async def _terminate(instance_id: str, request: Request[Any, Any, Any]) -> None:
        await client.terminate(instance_id, await body_text(request), recursive=True, wait=False)

    async def _reason(request: Request[Any, Any, Any]) -> str | None:
        return request.query_params.get("reason")

    handlers = [
        healthz,
        start,
        get_workflow,
        raise_event,
        management(
            "pause",
            "ERR_PAUSE_WORKFLOW",
            lambda i, r: _pause(i, r),
            "error pausing workflow {id}: failed to pause workflow {id}: failed to suspend workflow: ",
        ),
        management(
            "resume",
            "ERR_RESUME_WORKFLOW",
            lambda i, r: _resume(i, r),
            "error resuming workflow {id}: failed to resume workflow {id}: failed to resume workflow: ",
        ),
        management(
            "terminate",
            "ERR_TERMINATE_WORKFLOW",
            _terminate,
            "error terminating workflow {id}: ",
            "failed to submit termination request:: no such instance exists",
        ),
        management(
            "purge",
            "ERR_PURGE_WORKFLOW",
            lambda i, r: client.purge(i, recursive=True),
            "error purging workflow {id}: failed to Purge workflow {id}: failed to purge workflow state: ",
            "failed to purge workflow state: failed to fetch workflow state: no such instance exists",
        ),
    ]

    async def _pause(instance_id: str, request: Request[Any, Any, Any]) -> None:
        await client.suspend(instance_id, await _reason(request), wait=False)

    async def _resume(instance_id: str, request: Request[Any, Any, Any]) -> None:
        await client.resume(instance_id, await _reason(request), wait=False)

    def not_found(_: Request[Any, Any, Any], exc: HTTPException) -> Response[dict[str, str]]:
        return _error("ERR_NOT_FOUND", str(exc.detail), exc.status_code)

    # logging_config=None: Litestar must not replace the process's logging set-up (the CLI owns it).
    return Litestar(
        route_handlers=handlers, openapi_config=None, logging_config=None, exception_handlers={HTTPException: not_found}
    )


class _Server(uvicorn.Server):
    """uvicorn, minus its signal handlers: the sidecar's command line owns SIGINT/SIGTERM."""

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield


class HttpListener:
    def __init__(self, server: _Server, task: asyncio.Task[None], port: int) -> None:
        self._server, self._task, self.port = server, task, port

    async def stop(self) -> None:
        self._server.should_exit = True
        with contextlib.suppress(Exception):
            await asyncio.wait_for(self._task, 5)


async def start_http(engine: Engine, app_id: str, host: str, port: int, token: str | None = None) -> HttpListener:
    app = create_http_app(engine, app_id)
    config = uvicorn.Config(
        TokenMiddleware(app, token) if token else app,
        host=host,
        port=port,
        log_level="warning",
        lifespan="off",
        access_log=False,
        log_config=None,
    )
    server = _Server(config)
    task = asyncio.create_task(server.serve())
    while not server.started:
        if task.done():
            with contextlib.suppress(SystemExit):  # uvicorn exits when it cannot bind
                task.result()
            raise OSError(f"app {app_id!r}: cannot listen for HTTP on {host}:{port} (port in use?)")
        await asyncio.sleep(0.01)
    bound = server.servers[0].sockets[0].getsockname()[1]
    return HttpListener(server, task, bound)
