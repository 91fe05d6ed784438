"""``python -m realdapr run -f dapr.yaml``: every app of a multi-app run template on real daprd.

What ``dapr run -f`` does, plus what it leaves to the user, in one supervised process tree: placement and
scheduler on local ports that do not clash with a ``dapr init`` install; the workflow state store in its own
database on ``POSTGRES_URL``; then per app one daprd and the app's command, each restarted when it exits on its
own (the CLI restarts nothing, so an app that crashes on purpose would stay dead). Every line of output, daprd's
included, goes to the console prefixed with its source. Ctrl-C or SIGTERM stops all of it.

The Dapr CLI is not used: its 1.18 module is not served by the Go module proxy on this project's machines, so it
cannot be built here (README, "Running on real Dapr"). The daprd flags are those the CLI 1.18 passes.
"""

from __future__ import annotations

import asyncio
import logging
import os
import shutil
import socket
import sys
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import yaml

from common.db import ensure_database, libpq_url
from devtools import health
from devtools.ports import free_port, taken_ports
from sidecar.supervisor import Launch, Supervisor
from sidecar.template import AppSpec, RunTemplate, app_environment

from .binaries import DaprBinaries

log = logging.getLogger("realdapr")

WORKFLOW_DB = "dapr_workflows"
# Below 32768 (outbound sockets take ports from 32768-60999) and away from what `dapr init` publishes
# (placement 50005, scheduler 50006, Redis 6379, Zipkin 9411) and the CLI's defaults (50001, 9090, 7777).
DEFAULT_PLACEMENT_PORT = 6050
DEFAULT_SCHEDULER_PORT = 6060
READY_TIMEOUT = 60.0
# Everything listens on loopback only: nothing of a local run is meant for the network.
_LOOPBACK = (
    "--listen-address",
    "127.0.0.1",
    "--healthz-listen-address",
    "127.0.0.1",
    "--metrics-listen-address",
    "127.0.0.1",
)


class RunError(Exception):
    """The run cannot start. The message says what to do; nothing is left running."""


@dataclass(frozen=True)
class ControlPlanePorts:
    placement: int
    placement_health: int
    placement_metrics: int
    placement_raft: int
    scheduler: int
    scheduler_health: int
    scheduler_metrics: int
    etcd_client: int
    etcd_peer: int

    @classmethod
    def from_bases(cls, placement: int, scheduler: int) -> ControlPlanePorts:
        """Fixed ports next to each base, or free ports for a base of 0 (what tests use)."""

        def near(base: int, offset: int) -> int:
            return base + offset if base else free_port()

        return cls(
            near(placement, 0),
            near(placement, 1),
            near(placement, 2),
            near(placement, 3),
            near(scheduler, 0),
            near(scheduler, 1),
            near(scheduler, 2),
            near(scheduler, 3),
            near(scheduler, 4),
        )


@dataclass(frozen=True)
class Plan:
    """Everything decided before a process starts: the launches, in start order, and what to wait for."""

    control_plane: list[Launch]
    control_plane_health: list[str]
    sidecars_and_apps: list[Launch]
    sidecar_health: dict[str, str]  # app id -> daprd's /v1.0/healthz


def check_ports_free(ports: Iterable[tuple[int, str]]) -> None:
    """Raise RunError naming every fixed port something else already listens on."""
    taken = taken_ports(ports)
    if taken:
        raise RunError(
            f"port{'s' if len(taken) > 1 else ''} already in use: {', '.join(taken)}. Stop what holds "
            "them (another `make run` or `make run-dapr`?) or change the ports in the template."
        )


def write_resources(template: RunTemplate, target: Path, store_url: str) -> Path:
    """Copy the template's resources into ``target``, pointing the actor state store at ``store_url``.

    Raises RunError when no component is an actor state store: daprd would start, but no workflow could run.
    """
    if target.exists():
        shutil.rmtree(target)
    target.mkdir(parents=True)
    stores = 0
    for folder in template.resources_paths:
        if not folder.is_dir():
            raise RunError(f"{template.path}: resources folder {folder} does not exist")
        # daprd loads only the top level of a resources folder, and so does this copy.
        for file in sorted(folder.glob("*.y*ml")):
            docs = [doc for doc in yaml.safe_load_all(file.read_text()) if doc]
            for doc in docs:
                if _is_actor_store(doc):
                    _set_metadata(doc, "connectionString", store_url)
                    stores += 1
            (target / file.name).write_text(yaml.safe_dump_all(docs, sort_keys=False))
    if stores != 1:
        raise RunError(
            f"{template.path}: the resources must hold exactly one state store with actorStateStore "
            f'"true" (found {stores}); workflows need one, shared by every app'
        )
    return target


def write_config(template: RunTemplate, target: Path) -> Path | None:
    """Copy the template's Configuration into ``target``, without the Zipkin exporter when nothing listens at
    its endpoint (``dapr init`` starts Zipkin; without it daprd logs a failed export every few seconds)."""
    if template.config_file is None:
        return None
    if not template.config_file.is_file():
        raise RunError(f"{template.path}: configFilePath {template.config_file} does not exist")
    doc = yaml.safe_load(template.config_file.read_text()) or {}
    tracing = (doc.get("spec") or {}).get("tracing") or {}
    endpoint = (tracing.get("zipkin") or {}).get("endpointAddress")
    if endpoint and not _listening(endpoint):
        log.info("no Zipkin at %s: daprd will not export traces", endpoint)
        del tracing["zipkin"]
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text(yaml.safe_dump(doc, sort_keys=False))
    return target


def _listening(url: str) -> bool:
    parsed = httpx.URL(url)
    try:
        with socket.create_connection((parsed.host, parsed.port or 80), timeout=1):
            return True
    except OSError:
        return False


def _is_actor_store(doc: dict[str, Any]) -> bool:
    if doc.get("kind") != "Component" or not str(doc.get("spec", {}).get("type", "")).startswith("state."):
        return False
    return any(
        m.get("name") == "actorStateStore" and str(m.get("value")).lower() == "true"
        for m in doc["spec"].get("metadata") or []
    )


def _set_metadata(doc: dict[str, Any], name: str, value: str) -> None:
    items = doc["spec"].setdefault("metadata", [])
    items[:] = [m for m in items if m.get("name") != name] + [{"name": name, "value": value}]


def plan(
    template: RunTemplate,
    dapr: DaprBinaries,
    resources: Path,
    config: Path | None,
    data_dir: Path,
    ports: ControlPlanePorts,
    parent_env: dict[str, str],
    log_level: str = "info",
) -> Plan:
    base_env = daprd_environment(parent_env)
    commands = control_plane_commands(dapr, ports, data_dir / "scheduler", log_level)
    control = [Launch(name, command, data_dir, base_env) for name, command in commands.items()]
    python_dir = os.path.dirname(sys.executable)
    launches: list[Launch] = []
    sidecar_health = {}
    for app in template.apps:
        grpc, http = app.grpc_port or free_port(), app.http_port or free_port()
        launches.append(
            Launch(
                f"{app.app_id} daprd",
                daprd_command(app, dapr, grpc, http, resources, config, ports, log_level),
                app.app_dir,
                base_env,
            )
        )
        launches.append(
            Launch(app.app_id, app.command, app.app_dir, app_environment(app, grpc, http, parent_env, python_dir))
        )
        sidecar_health[app.app_id] = f"http://127.0.0.1:{http}/v1.0/healthz"
    return Plan(control, control_plane_health(ports), launches, sidecar_health)


def daprd_environment(parent_env: dict[str, str]) -> dict[str, str]:
    """The environment of placement, scheduler and daprd: they advertise DAPR_HOST_IP, and on a loopback-only
    machine anything else is unreachable."""
    return {**parent_env, "DAPR_HOST_IP": "127.0.0.1"}


def control_plane_commands(
    dapr: DaprBinaries, ports: ControlPlanePorts, etcd_dir: Path, log_level: str = "info"
) -> dict[str, list[str]]:
    """The placement and scheduler command lines (in start order), the scheduler's etcd data in ``etcd_dir``."""
    etcd_dir.mkdir(parents=True, exist_ok=True)
    return {
        "placement": [
            dapr.path("placement"),
            "--port",
            str(ports.placement),
            *_LOOPBACK,
            "--healthz-port",
            str(ports.placement_health),
            "--metrics-port",
            str(ports.placement_metrics),
            "--id",
            "dapr-placement-0",
            "--initial-cluster",
            f"dapr-placement-0=127.0.0.1:{ports.placement_raft}",
            "--log-level",
            log_level,
        ],
        "scheduler": [
            dapr.path("scheduler"),
            "--port",
            str(ports.scheduler),
            *_LOOPBACK,
            "--etcd-client-listen-address",
            "127.0.0.1",
            "--healthz-port",
            str(ports.scheduler_health),
            "--metrics-port",
            str(ports.scheduler_metrics),
            "--id",
            "dapr-scheduler-0",
            "--etcd-data-dir",
            str(etcd_dir),
            "--etcd-client-port",
            str(ports.etcd_client),
            "--etcd-initial-cluster",
            f"dapr-scheduler-0=http://127.0.0.1:{ports.etcd_peer}",
            "--override-broadcast-host-port",
            f"127.0.0.1:{ports.scheduler}",
            "--log-level",
            log_level,
        ],
    }


def control_plane_health(ports: ControlPlanePorts) -> list[str]:
    """placement's and scheduler's health URLs, in the order of ``control_plane_commands``."""
    return [f"http://127.0.0.1:{ports.placement_health}/healthz", f"http://127.0.0.1:{ports.scheduler_health}/healthz"]


def daprd_command(
    app: AppSpec,
    dapr: DaprBinaries,
    grpc: int,
    http: int,
    resources: Path,
    config: Path | None,
    ports: ControlPlanePorts,
    log_level: str,
    *,
    internal_grpc: int = 0,
    metrics: int = 0,
) -> list[str]:
    """The daprd command line the Dapr CLI 1.18 builds for one app of a run template. ``internal_grpc`` and
    ``metrics`` of 0 are free ports."""
    command = [
        dapr.path("daprd"),
        "--app-id",
        app.app_id,
        "--app-protocol",
        app.app_protocol,
        "--app-channel-address",
        app.app_channel_address,
        "--dapr-grpc-port",
        str(grpc),
        "--dapr-http-port",
        str(http),
        "--dapr-internal-grpc-port",
        str(internal_grpc or free_port()),
        "--dapr-internal-grpc-listen-address",
        "127.0.0.1",
        "--metrics-port",
        str(metrics or free_port()),
        "--metrics-listen-address",
        "127.0.0.1",
        "--dapr-listen-addresses",
        "127.0.0.1",
        "--resources-path",
        str(resources),
        "--placement-host-address",
        f"127.0.0.1:{ports.placement}",
        "--scheduler-host-address",
        f"127.0.0.1:{ports.scheduler}",
        "--log-level",
        log_level,
    ]
    if app.app_port:
        command += ["--app-port", str(app.app_port)]
    if config is not None:
        command += ["--config", str(config)]
    return command


async def wait_healthy(urls: dict[str, str], stop: asyncio.Event, timeout: float, what: str) -> None:
    """Return once every URL answers 2xx (or ``stop`` is set); RunError after ``timeout`` naming those that did
    not."""
    try:
        await health.wait_healthy_async(urls, timeout, what, stop=stop)
    except health.NotHealthy as err:
        raise RunError(f"{err} (its log lines above say why)") from None


async def run(
    template: RunTemplate,
    dapr: DaprBinaries,
    *,
    postgres_url: str,
    data_dir: Path,
    workflow_db: str = WORKFLOW_DB,
    placement_port: int = DEFAULT_PLACEMENT_PORT,
    scheduler_port: int = DEFAULT_SCHEDULER_PORT,
    log_level: str = "info",
    ready_timeout: float = READY_TIMEOUT,
    on_signals: Callable[[Callable[[], None], Callable[[int], None]], None] | None = None,
) -> int:
    ports = ControlPlanePorts.from_bases(placement_port, scheduler_port)
    fixed = [
        (getattr(ports, name), f"{'placement' if name.startswith('placement') else 'scheduler'} {name}")
        for name in ControlPlanePorts.__dataclass_fields__
    ]
    for app in template.apps:
        fixed += [
            (port, f"{app.app_id} {what}")
            for what, port in (
                ("appPort", app.app_port),
                ("daprGRPCPort", app.grpc_port),
                ("daprHTTPPort", app.http_port),
            )
            if port
        ]
    check_ports_free(fixed)
    await ensure_database(postgres_url, workflow_db)
    # pgx takes a postgres:// URL; the state store gets its own database, never a service's.
    resources = write_resources(template, data_dir / "resources", libpq_url(postgres_url, workflow_db))
    config = write_config(template, data_dir / "config.yaml")
    the_plan = plan(template, dapr, resources, config, data_dir, ports, dict(os.environ), log_level)

    stop = asyncio.Event()
    supervisors: list[Supervisor] = []
    forced: list[int] = []

    def again(signum: int) -> None:
        log.warning("second stop request: killing everything now")
        forced.append(signum)
        for supervisor in supervisors:
            supervisor.kill_now()

    if on_signals:
        on_signals(stop.set, again)
    log.info(
        "Dapr %s from %s (%s); placement 127.0.0.1:%d, scheduler 127.0.0.1:%d, workflow state in database %s",
        dapr.version,
        dapr.bin_dir,
        dapr.source,
        ports.placement,
        ports.scheduler,
        workflow_db,
    )
    control = Supervisor(the_plan.control_plane)
    supervisors.append(control)
    control_stop = asyncio.Event()
    control_task = asyncio.create_task(control.run(control_stop))
    apps_stop = asyncio.Event()
    apps_task: asyncio.Task[None] | None = None
    failed: RunError | None = None
    try:
        await wait_healthy(
            dict(zip(("placement", "scheduler"), the_plan.control_plane_health, strict=True)),
            stop,
            ready_timeout,
            "the Dapr control plane",
        )
        if not stop.is_set():
            apps = Supervisor(the_plan.sidecars_and_apps)
            supervisors.append(apps)
            apps_task = asyncio.create_task(apps.run(apps_stop))
            await wait_healthy(the_plan.sidecar_health, stop, ready_timeout, "daprd")
            if not stop.is_set():
                log.info("all %d daprd sidecars are up; Ctrl-C or SIGTERM stops everything", len(template.apps))
            await stop.wait()
    except RunError as exc:
        failed = exc
        log.error("%s", exc)
    finally:
        # Apps and their sidecars first, so nothing calls a control plane that is already gone.
        apps_stop.set()
        if apps_task is not None:
            await apps_task
        control_stop.set()
        await control_task
    log.info("stopped")
    if failed is not None:
        return 1
    return 128 + forced[0] if forced else 0
