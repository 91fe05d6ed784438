"""The command lines of a real-Dapr run, decided before any process starts: placement's and the scheduler's, one
daprd per app with the flags the Dapr CLI 1.18 passes, their environment, and the whole ``Plan`` of a run (what to
start, in which order, and which health URLs to wait for). Nothing here starts a process."""

from __future__ import annotations

import os
import sys
from dataclasses import dataclass
from pathlib import Path

from devtools.ports import free_port
from sidecar.supervisor import Launch
from sidecar.template import AppSpec, RunTemplate, app_environment

from .binaries import DaprBinaries
from .ports import ControlPlanePorts

# Everything listens on loopback only: nothing of a local run is meant for the network.
_LOOPBACK = (
    "--listen-address",
    "127.0.0.1",
    "--healthz-listen-address",
    "127.0.0.1",
    "--metrics-listen-address",
    "127.0.0.1",
)


@dataclass(frozen=True)
class Plan:
    """Everything decided before a process starts: the launches, in start order, and what to wait for."""

    control_plane: list[Launch]
    control_plane_health: dict[str, str]  # "placement", "scheduler" -> its /healthz
    sidecars_and_apps: list[Launch]
    sidecar_health: dict[str, str]  # app id -> daprd's /v1.0/healthz


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
    """The run of ``template``: placement and scheduler, then per app its daprd and the app itself (free ports for
    the daprd ports the template leaves out), the apps' environment built from ``parent_env``."""
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


def control_plane_health(ports: ControlPlanePorts) -> dict[str, str]:
    """placement's and the scheduler's health URLs, by name."""
    return {
        "placement": f"http://127.0.0.1:{ports.placement_health}/healthz",
        "scheduler": f"http://127.0.0.1:{ports.scheduler_health}/healthz",
    }


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
