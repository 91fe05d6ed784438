"""How every app runs: settings, its database, the workflow worker and the HTTP server, in one process.

``run_service`` is what each ``<package>/__main__.py`` calls; ``healthz`` is the handler every app mounts;
``service_app`` is the HTTP app of a service that hosts activities.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import signal
import sys
from collections.abc import Callable, Iterable
from types import TracebackType
from typing import TypeVar

import uvicorn
from dapr.ext.workflow import WorkflowRuntime
from dapr.ext.workflow.logger import LoggerOptions
from litestar import Litestar, MediaType, get
from litestar.di import Provide
from litestar.types import ControllerRouterHandler

from common import telemetry
from common.db import Database
from common.fault_api import fault_router
from common.faults import FaultInjector
from common.migrate import prepare_database
from common.openapi import docs_assets_router, openapi_config
from common.problems import forbid_unknown_fields_in_docs, problem_config
from common.settings import Settings, SettingsError, load_settings

log = logging.getLogger(__name__)
T = TypeVar("T")

# Registers the app's workflows and activities on the runtime; called before the runtime starts.
Register = Callable[[WorkflowRuntime, Settings], None]
CreateApp = Callable[[Settings], Litestar]


@get("/healthz", media_type=MediaType.TEXT, include_in_schema=False, sync_to_thread=False)
def healthz() -> str:
    """Liveness: the process serves HTTP. (Readiness of the DB is checked by each request anyway.)"""
    return "ok"


def service_app(
    settings: Settings, title: str, handlers: Iterable[ControllerRouterHandler], activities: Iterable[str]
) -> Litestar:
    """The HTTP app of a service: its read handlers with ``db`` injected, ``/healthz``, the fault endpoints
    for its ``activities`` when FAULTS_ENABLED, OpenAPI and its docs page at /schema (``common.openapi``) and
    problem details for every error."""
    if not settings.database_url:
        raise ValueError("settings.database_url is required (run_service resolves it)")
    db = Database(settings.database_url)
    route_handlers: list[ControllerRouterHandler] = [healthz, docs_assets_router(), *handlers]
    if settings.faults_enabled:
        route_handlers.append(fault_router(FaultInjector(db, activities, enabled=True), settings.faults_allow_remote))
    return forbid_unknown_fields_in_docs(
        Litestar(
            route_handlers=route_handlers,
            dependencies={"db": Provide(lambda: db, sync_to_thread=False)},
            on_shutdown=[db.dispose],
            openapi_config=openapi_config(title),
            **problem_config(plugins=telemetry.litestar_plugins()),
        )
    )


def own_settings(app_id: str, load: Callable[[], T]) -> T:
    """Settings only this app has, read once at start (``load()``); bad values: the message and exit code 2, as for
    the settings every app has."""
    try:
        return load()
    except SettingsError as exc:
        logging.basicConfig()
        logging.getLogger(app_id).error("invalid configuration: %s", exc)
        sys.exit(2)


def run_service(app_id: str, *, migrations: str, create_app: CreateApp, register: Register) -> None:
    """Run one app until SIGTERM/SIGINT, then stop the workflow worker cleanly.

    1. logging and ``load_settings(app_id)`` (bad values: message and exit code 2);
    2. ``prepare_database(app_id, migrations)``; the resolved URL replaces ``settings.database_url``;
    3. ``create_app(settings)`` served by uvicorn on ``settings.host:settings.port``;
    4. once HTTP listens, a ``WorkflowRuntime`` (reads DAPR_GRPC_PORT itself) with ``register(runtime,
       settings)`` applied is started; if it cannot reach the sidecar the app exits with code 1.

    Activities run on the worker's own thread and event loop: give them their own ``common.db.Database``
    (engines per loop), never the engine of the HTTP app.
    """
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s [" + app_id + "] %(name)s: %(message)s")
    try:
        settings = load_settings(app_id)
    except SettingsError as exc:
        log.error("invalid configuration: %s", exc)
        sys.exit(2)
    logging.getLogger().setLevel(settings.log_level)
    telemetry.configure(app_id)
    # Alembic's INFO lines ("Context impl PostgresqlImpl.", "Will assume transactional DDL.") say nothing.
    logging.getLogger("alembic").setLevel(logging.WARNING)
    sys.exit(asyncio.run(_main(settings, migrations, create_app, register)))


def sdk_logger_options() -> LoggerOptions:
    """For the workflow SDK's runtime and clients: it adds a handler of its own to its loggers, which also
    propagate to the root handler; a null handler as its own keeps each line to one, printed by the root's."""
    return LoggerOptions(log_handler=logging.NullHandler())


async def _main(settings: Settings, migrations: str, create_app: CreateApp, register: Register) -> int:
    url = await prepare_database(settings.app_id, migrations)
    settings = dataclasses.replace(settings, database_url=url)
    log.info("database ready: %s", _redacted(url))

    runtime = WorkflowRuntime(logger_options=sdk_logger_options())
    register(runtime, settings)
    server = uvicorn.Server(
        uvicorn.Config(create_app(settings), host=settings.host, port=settings.port, log_config=None, lifespan="on")
    )
    # uvicorn re-raises the signal that stopped it once it is done; with the default handlers SIGTERM would
    # kill us before the worker is stopped. Harmless handlers here let the cleanup below run.
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: None)

    worker = asyncio.create_task(_start_worker_when_listening(server, runtime))
    try:
        await server.serve()
    finally:
        worker.cancel()
        with _suppress_all():
            await worker
        log.info("stopping the workflow worker")
        with _suppress_all():
            await asyncio.to_thread(runtime.shutdown)
    return 0 if not worker_failed(worker) else 1


async def _start_worker_when_listening(server: uvicorn.Server, runtime: WorkflowRuntime) -> None:
    while not server.started:
        if server.should_exit:
            return
        await asyncio.sleep(0.05)
    try:
        await asyncio.to_thread(runtime.start)  # waits until the work-item stream is open
    except Exception:
        log.exception("the workflow worker could not connect to the sidecar; exiting")
        server.should_exit = True
        raise
    log.info("workflow worker connected")


def worker_failed(task: asyncio.Task[None]) -> bool:
    return task.done() and not task.cancelled() and task.exception() is not None


class _suppress_all:
    def __enter__(self) -> None:
        return None

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> bool:
        if exc is not None and not isinstance(exc, asyncio.CancelledError):
            log.warning("ignored during shutdown: %r", exc)
        return True


def _redacted(url: str) -> str:
    from sqlalchemy.engine import make_url

    return make_url(url).render_as_string(hide_password=True)
