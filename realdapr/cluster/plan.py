"""The processes of a cluster run, decided before any starts: which simulated host (network namespace) each pod
gets and its address, the control plane's command lines (``realdapr.commands``, listening on the control-plane
host's address), and per pod its init containers, its app and its daprd with the flags the injector derives from
the pod's annotations (``injector``) plus what the cluster itself provides (as the injector and the operator do in
Kubernetes): the control plane's addresses, mTLS, the resources folder, the Configuration file, the namespace.

Differences from Kubernetes that the cluster makes on purpose, all here: daprd's API also listens on the pod's
address (the runner's watchdog, in the root namespace, reads its metadata as a probe would from the kubelet);
``python`` in a container's command is this virtualenv's interpreter (the image's is the project installed the same
way); ``overrides`` (given on the command line, e.g. FAULTS_ENABLED for tests) are added to every app's environment.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from sidecar.supervisor import Launch

from ..binaries import DaprBinaries
from ..commands import Mtls, daprd_environment
from ..ports import ControlPlanePorts
from .injector import SIDECAR_HTTP_PORT, SIDECAR_PUBLIC_PORT
from .netns import Host
from .topology import App, Container, Topology, substitute

CONTROL_PLANE = "cp"
DATABASE = "db"
FIRST_POD = 10  # pods' address numbers start here; .2 is the control plane, .3 the database
# What a node's apps need from a process's parent environment (the image would have its own).
PASSED_ENV = ("PATH", "HOME", "LANG", "LC_ALL", "TMPDIR", "VIRTUAL_ENV")


@dataclass(frozen=True)
class Pod:
    """One replica of an app on one node: its host name (``<node>-<app>``), its app and its node."""

    name: str
    app: App
    node: str

    @property
    def app_id(self) -> str:
        return self.app.sidecar.app_id


def hosts(topology: Topology, nodes: int) -> tuple[dict[str, int], list[Pod]]:
    """The hosts to make (name -> address number) and the pods on them: the control plane, the database, and on
    each of ``nodes`` nodes one replica of every app."""
    numbers = {CONTROL_PLANE: 2, DATABASE: 3}
    pods = []
    for n in range(1, nodes + 1):
        for i, app in enumerate(topology.apps):
            pod = Pod(f"n{n}-{app.sidecar.app_id}", app, f"n{n}")
            numbers[pod.name] = FIRST_POD + (n - 1) * len(topology.apps) + i
            pods.append(pod)
    return numbers, pods


def daprd_command(
    pod: Pod,
    host: Host,
    dapr: DaprBinaries,
    cp: Host,
    ports: ControlPlanePorts,
    resources: Path,
    configs: Mapping[str, Path],
    mtls: Mtls,
) -> list[str]:
    sidecar = pod.app.sidecar
    command = [dapr.path("daprd"), *sidecar.daprd_flags()]
    listen = [*sidecar.listen_addresses(), host.address]
    command += ["--dapr-listen-addresses", ",".join(listen), "--mode", "standalone"]
    command += ["--resources-path", str(resources)]
    if sidecar.config:
        if sidecar.config not in configs:
            raise ValueError(f"{pod.app.name}: dapr.io/config {sidecar.config!r} names no Configuration")
        command += ["--config", str(configs[sidecar.config])]
    command += ["--placement-host-address", f"{cp.address}:{ports.placement}"]
    command += ["--scheduler-host-address", f"{cp.address}:{ports.scheduler}"]
    command += ["--enable-mtls", "--sentry-address", mtls.sentry_address]
    return command


def daprd_env(host: Host, namespace: str, mtls: Mtls, parent: Mapping[str, str]) -> dict[str, str]:
    """daprd's environment: what it advertises to placement (its pod's address), its namespace, its trust."""
    env = daprd_environment(_passed(parent), mtls)
    return {**env, "DAPR_HOST_IP": host.address, "NAMESPACE": namespace}


def container_env(
    pod: Pod, container: Container, db_names: list[str], db_address: str, overrides: Mapping[str, str]
) -> dict[str, str]:
    """A container's environment: the manifest's (the database's names replaced by its address), what the injector
    adds, then ``overrides``."""
    env = {name: substitute(value, db_names, db_address) for name, value in container.env.items()}
    return {**_passed(os.environ), **env, **pod.app.sidecar.app_env(), **overrides}


def container_command(container: Container) -> list[str]:
    """The container's command, ``python`` being this interpreter."""
    first, *rest = container.command
    return [sys.executable if first in ("python", "python3") else first, *rest]


def pod_launches(
    pod: Pod,
    host: Host,
    daprd: list[str],
    daprd_env: Mapping[str, str],
    app_env: Mapping[str, str],
    cwd: Path,
) -> list[Launch]:
    """The pod's daprd and app, each run inside the pod's namespace."""
    app = [*host.exec_prefix(), *container_command(pod.app.container)]
    return [
        Launch(f"{pod.name} daprd", [*host.exec_prefix(), *daprd], cwd, dict(daprd_env)),
        Launch(pod.name, app, cwd, dict(app_env)),
    ]


def pod_health(pod: Pod, host: Host) -> dict[str, str]:
    """What must answer before the pod counts as ready: daprd's readiness URL and the app's readiness probe."""
    urls = {f"{pod.name} daprd": f"http://{host.address}:{SIDECAR_PUBLIC_PORT}/v1.0/healthz"}
    container = pod.app.container
    if container.port and container.readiness_path:
        urls[pod.name] = f"http://{host.address}:{container.port}{container.readiness_path}"
    return urls


def daprd_api(host: Host) -> str:
    return f"http://{host.address}:{SIDECAR_HTTP_PORT}"


def _passed(env: Mapping[str, str]) -> dict[str, str]:
    return {name: env[name] for name in PASSED_ENV if name in env}
