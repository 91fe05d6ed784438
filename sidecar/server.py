"""Binds the listeners of every app ID to one engine: a gRPC port per app (its "daprd"), and an
optional HTTP port per app with Dapr's health and workflow-management endpoints."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import grpc
from dapr.ext.workflow._durabletask.internal import orchestrator_service_pb2_grpc as pb_grpc

from .access_policy import AccessPolicies
from .api_token import TokenInterceptor, configured_token
from .engine import Engine
from .grpc_api import WorkflowServicer
from .model import status_name
from .retention import RetentionPolicy

if TYPE_CHECKING:
    from .http_api import HttpListener

log = logging.getLogger("sidecar")


@dataclass(frozen=True)
class AppListen:
    """One app ID and the ports its sidecar listens on (0 = pick a free port)."""

    app_id: str
    grpc_port: int
    http_port: int | None = None


class Sidecar:
    """A running sidecar: the engine plus each app's listeners. ``ports`` maps app ID to the bound
    (grpc_port, http_port or None)."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self.ports: dict[str, tuple[int, int | None]] = {}
        self._grpc_servers: list[grpc.aio.Server] = []
        self._http_servers: list[HttpListener] = []
        self._sweeper: asyncio.Task[None] | None = None

    def keep_for(self, policy: RetentionPolicy) -> None:
        """Purge finished instances as ``policy`` says, now and then every ``policy.sweep_interval`` seconds."""

        async def sweep() -> None:
            while True:
                purged = self.engine.purge_expired(policy)
                # A large backlog goes in batches, with other work in between.
                await asyncio.sleep(0 if purged else policy.sweep_interval)

        self._sweeper = asyncio.create_task(sweep(), name="retention")

    async def stop(self, grace: float = 1.0) -> None:
        if self._sweeper is not None:
            self._sweeper.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._sweeper
        for listener in self._http_servers:
            await listener.stop()
        for server in self._grpc_servers:
            await server.stop(grace)
        await self.engine.close()


async def start_sidecar(
    apps: list[AppListen],
    state_path: str | Path,
    host: str = "127.0.0.1",
    retention: RetentionPolicy | None = None,
    policies: AccessPolicies | None = None,
) -> Sidecar:
    """Open the state store, recover it, and start every app's listeners (which require ``DAPR_API_TOKEN`` when
    the process has it, as daprd does). With ``retention``, finished instances are purged as it says; with
    ``policies``, cross-app work is checked against them.

    Raises ``sidecar.store.StateError`` when the state file is corrupt or of another version, and
    ``OSError`` when a port cannot be bound. Nothing is left listening when it raises.
    """
    ids = [a.app_id for a in apps]
    if len(set(ids)) != len(ids):
        raise ValueError(f"an app ID is given twice: {ids}")
    engine = await Engine.open(Path(state_path))
    engine.policies = policies
    sidecar = Sidecar(engine)
    token = configured_token()
    try:
        for app in apps:
            server = grpc.aio.server(
                interceptors=[TokenInterceptor(token)] if token else None,
                options=[
                    ("grpc.max_receive_message_length", 16 * 1024 * 1024),
                    ("grpc.max_send_message_length", 16 * 1024 * 1024),
                    ("grpc.so_reuseport", 0),
                ],
            )
            # The generated registration function carries no annotations.
            pb_grpc.add_TaskHubSidecarServiceServicer_to_server(  # type: ignore[no-untyped-call]
                WorkflowServicer(engine, app.app_id), server
            )
            try:
                port = server.add_insecure_port(f"{host}:{app.grpc_port}")
            except RuntimeError as exc:  # grpcio raises "Failed to bind" rather than returning 0
                raise OSError(
                    f"app {app.app_id!r}: cannot listen for gRPC on {host}:{app.grpc_port} (port in use?)"
                ) from exc
            if port == 0:
                raise OSError(f"app {app.app_id!r}: cannot listen for gRPC on {host}:{app.grpc_port} (port in use?)")
            await server.start()
            sidecar._grpc_servers.append(server)
            http_port = None
            if app.http_port is not None:
                from .http_api import start_http  # Litestar and uvicorn load only when an HTTP port is asked for

                http = await start_http(engine, app.app_id, host, app.http_port, token)
                sidecar._http_servers.append(http)
                http_port = http.port
            sidecar.ports[app.app_id] = (port, http_port)
            engine.register_app(app.app_id)
            log.info(
                "app %s: gRPC on %s:%d%s", app.app_id, host, port, f", HTTP on {host}:{http_port}" if http_port else ""
            )
    except BaseException:
        await sidecar.stop(grace=0)
        raise
    if policies is not None:
        for app_id in ids:
            if policies.applies_to(app_id):
                log.info(
                    "app %s: workflow access policies %s: other apps may schedule only what they allow",
                    app_id,
                    ", ".join(policies.names.get(app_id, [])) or "(unscoped)",
                )
    if retention is not None:
        sidecar.keep_for(retention)
        log.info(
            "finished instances are purged after: %s",
            ", ".join(
                f"{status_name(status).lower()} {seconds:g} s" for status, seconds in retention.by_status.items()
            ),
        )
    return sidecar
