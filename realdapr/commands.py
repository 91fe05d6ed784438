"""The command lines of a real-Dapr run, decided before any process starts: sentry's (with mTLS), placement's and
the scheduler's, one daprd per app with the flags the Dapr CLI 1.18 passes, their environment, and the whole
``Plan`` of a run (what to start, in which stages, and which health URLs to wait for at each). Nothing here starts
a process.

With mTLS (``Mtls``) every process gets its certificate from sentry, as in Kubernetes: placement and the scheduler
with ``--tls-enabled``, each daprd with ``--enable-mtls`` and the trust anchors in ``DAPR_TRUST_ANCHORS`` (the only
way daprd takes them). Flags and their traps are from Dapr 1.18.2's own options and integration tests.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from devtools.ports import free_port
from sidecar.supervisor import Launch
from sidecar.template import AppSpec, RunTemplate, app_environment

from .binaries import SENTRY, DaprBinaries
from .ports import ControlPlanePorts

# Everything listens on loopback where a flag allows it. (Dapr 1.18.2 ignores --healthz-listen-address: the
# health ports of sentry, placement and the scheduler, and sentry's metrics port, bind every interface.)
LOOPBACK = "127.0.0.1"


def _listen(host: str) -> tuple[str, ...]:
    """The listen flags of a control-plane process: loopback in a single-host run, its host's address in a cluster."""
    return ("--listen-address", host, "--healthz-listen-address", host, "--metrics-listen-address", host)


# The control plane's trust domain (sentry's default, and what daprd expects of it by default).
TRUST_DOMAIN = "localhost"
# With TLS the scheduler's etcd peer certificate names the scheduler by its Kubernetes pod name, so its ID must be
# dapr-scheduler-server-N ("peer certificate does not contain the expected DNS name" otherwise). Without TLS the
# former ID stays, and with it the etcd data (under <data dir>/default-<id>/): the two never share a folder.
SCHEDULER_ID = {True: "dapr-scheduler-server-0", False: "dapr-scheduler-0"}


@dataclass(frozen=True)
class Mtls:
    """How a run's processes reach sentry and what they trust: its address and the trust root's ``ca.crt``."""

    sentry_address: str
    trust_anchors: Path
    trust_domain: str = TRUST_DOMAIN


@dataclass(frozen=True)
class Stage:
    """Processes started together, and what must answer before the next stage starts."""

    what: str  # for messages: "sentry", "the Dapr control plane", "daprd"
    launches: list[Launch]
    health: dict[str, str]  # name -> health URL


@dataclass(frozen=True)
class Plan:
    """Everything decided before a process starts: the stages, in start order (stopped in reverse)."""

    stages: list[Stage]
    daprd: dict[str, DaprdEndpoints]  # app id -> what the watchdog polls


@dataclass(frozen=True)
class DaprdEndpoints:
    """An app's daprd: its process's name in the supervisor, and its HTTP API (health and metadata)."""

    launch: str  # "<app id> daprd"
    http: str  # http://127.0.0.1:PORT


def plan(
    template: RunTemplate,
    dapr: DaprBinaries,
    resources: Sequence[Path],
    config: Path | None,
    data_dir: Path,
    ports: ControlPlanePorts,
    parent_env: dict[str, str],
    log_level: str = "info",
    mtls: Mtls | None = None,
) -> Plan:
    """The run of ``template``: sentry (with ``mtls``), then placement and scheduler, then per app its daprd and the
    app itself (free ports for the daprd ports the template leaves out), the apps' environment built from
    ``parent_env``. Each daprd loads every folder of ``resources``."""
    base_env = daprd_environment(parent_env, mtls)
    stages = []
    if mtls is not None:
        sentry = Launch(SENTRY, sentry_command(dapr, ports, data_dir, log_level), data_dir, base_env)
        stages.append(Stage("sentry", [sentry], {SENTRY: sentry_health(ports)}))
    commands = control_plane_commands(dapr, ports, data_dir / "scheduler", log_level, mtls)
    control = [Launch(name, command, data_dir, base_env) for name, command in commands.items()]
    stages.append(Stage("the Dapr control plane", control, control_plane_health(ports)))
    python_dir = os.path.dirname(sys.executable)
    launches: list[Launch] = []
    sidecar_health = {}
    daprd = {}
    for app in template.apps:
        grpc, http = app.grpc_port or free_port(), app.http_port or free_port()
        name = f"{app.app_id} daprd"
        launches.append(
            Launch(
                name,
                daprd_command(app, dapr, grpc, http, resources, config, ports, log_level, mtls=mtls),
                app.app_dir,
                base_env,
            )
        )
        launches.append(
            Launch(app.app_id, app.command, app.app_dir, app_environment(app, grpc, http, parent_env, python_dir))
        )
        sidecar_health[app.app_id] = f"http://127.0.0.1:{http}/v1.0/healthz"
        daprd[app.app_id] = DaprdEndpoints(name, f"http://127.0.0.1:{http}")
    stages.append(Stage("daprd", launches, sidecar_health))
    return Plan(stages, daprd)


def daprd_environment(parent_env: dict[str, str], mtls: Mtls | None = None) -> dict[str, str]:
    """The environment of sentry, placement, scheduler and daprd: they advertise DAPR_HOST_IP, and on a loopback-only
    machine anything else is unreachable. With ``mtls``, daprd's trust anchors (it reads them from here only)."""
    env = {**parent_env, "DAPR_HOST_IP": "127.0.0.1"}
    if mtls is not None:
        env["DAPR_TRUST_ANCHORS"] = mtls.trust_anchors.read_text()
    return env


def sentry_command(
    dapr: DaprBinaries, ports: ControlPlanePorts, data_dir: Path, log_level: str = "info", host: str = LOOPBACK
) -> list[str]:
    """Sentry's command line: the trust root in ``data_dir/sentry`` (``trust.ensure_trust_root`` makes it), an
    empty configuration file (sentry refuses to start without one: its default names a Kubernetes object);
    listening on ``host``."""
    config = data_dir / "sentry-config.yaml"
    config.parent.mkdir(parents=True, exist_ok=True)
    config.touch()
    return [
        dapr.path(SENTRY),
        "--port",
        str(ports.sentry),
        *_listen(host),
        "--healthz-port",
        str(ports.sentry_health),
        "--metrics-port",
        str(ports.sentry_metrics),
        "--issuer-credentials",
        str(data_dir / "sentry"),
        "--trust-domain",
        TRUST_DOMAIN,
        "--mode",
        "standalone",
        "--config",
        str(config),
        "--log-level",
        log_level,
    ]


def sentry_health(ports: ControlPlanePorts) -> str:
    return f"http://127.0.0.1:{ports.sentry_health}/healthz"


def control_plane_commands(
    dapr: DaprBinaries,
    ports: ControlPlanePorts,
    etcd_dir: Path,
    log_level: str = "info",
    mtls: Mtls | None = None,
    host: str = LOOPBACK,
) -> dict[str, list[str]]:
    """The placement and scheduler command lines (in start order), the scheduler's etcd data in ``etcd_dir``; with
    ``mtls``, both get their certificates from sentry. Both listen on, and the scheduler advertises, ``host``
    (their raft and etcd peers stay on loopback: one of each)."""
    etcd_dir.mkdir(parents=True, exist_ok=True)
    tls: list[str] = []
    if mtls is not None:
        tls = [
            "--tls-enabled=true",
            "--sentry-address",
            mtls.sentry_address,
            "--trust-anchors-file",
            str(mtls.trust_anchors),
            "--trust-domain",
            mtls.trust_domain,
        ]
    scheduler_id = SCHEDULER_ID[mtls is not None]
    scheduler_tls = []
    if mtls is not None:
        # The scheduler writes its identity to a folder (default $TMPDIR/secrets/dapr.io/tls, shared by every
        # scheduler on the machine): one of the run's own.
        scheduler_tls = ["--identity-directory-write", str(etcd_dir / "identity")]
    return {
        "placement": [
            dapr.path("placement"),
            "--port",
            str(ports.placement),
            *_listen(host),
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
            *tls,
        ],
        "scheduler": [
            dapr.path("scheduler"),
            "--port",
            str(ports.scheduler),
            *_listen(host),
            "--etcd-client-listen-address",
            "127.0.0.1",
            "--healthz-port",
            str(ports.scheduler_health),
            "--metrics-port",
            str(ports.scheduler_metrics),
            "--id",
            scheduler_id,
            "--etcd-data-dir",
            str(etcd_dir),
            "--etcd-client-port",
            str(ports.etcd_client),
            "--etcd-initial-cluster",
            f"{scheduler_id}={'https' if mtls else 'http'}://127.0.0.1:{ports.etcd_peer}",
            "--override-broadcast-host-port",
            f"{host}:{ports.scheduler}",
            "--log-level",
            log_level,
            *tls,
            *scheduler_tls,
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
    resources: Path | Sequence[Path],
    config: Path | None,
    ports: ControlPlanePorts,
    log_level: str,
    *,
    internal_grpc: int = 0,
    metrics: int = 0,
    mtls: Mtls | None = None,
) -> list[str]:
    """The daprd command line the Dapr CLI 1.18 builds for one app of a run template (with ``mtls``, as the
    Kubernetes injector adds it). ``resources``: one folder or several (daprd loads the top level of each).
    ``internal_grpc`` and ``metrics`` of 0 are free ports."""
    folders = [resources] if isinstance(resources, Path) else list(resources)
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
        *[arg for folder in folders for arg in ("--resources-path", str(folder))],
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
    if mtls is not None:
        command += ["--enable-mtls", "--sentry-address", mtls.sentry_address]
    return command
