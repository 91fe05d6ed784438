"""The three deployments ``bench.engines`` runs its load on, each started and stopped whole: the sidecar with Dapr
SDK workers, durabletask's in-memory backend with its worker (the peer), and real placement, scheduler and daprd
with the same SDK workers; the load's client run against one; and the sidecar's state file read back after it."""

from __future__ import annotations

import asyncio
import json
import os
import re
import sqlite3
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from devtools import health
from devtools.ports import LOOPBACK, free_port

from .processes import READY_TIMEOUT, Process

CLIENT_TIMEOUT = 900.0


@dataclass
class Deployment:
    engines: list[Process]  # what serves the workflow API: the sidecar, the peer's backend, or daprd + control plane
    workers: list[Process]
    client: list[str]  # the client's command line, before PREFIX WORKFLOWS CONCURRENCY ACTIVITIES
    client_env: dict[str, str] = field(default_factory=dict)
    state: Path | None = None  # the sidecar's state file
    store: Path | None = None  # the data folder of an embedded PostgreSQL this deployment started

    def stop(self) -> None:
        for process in [*self.workers, *reversed(self.engines)]:
            process.stop()
        if self.store is not None:
            from devtools.devdb import stop_embedded

            stop_embedded(self.store)

    def tails(self) -> str:
        return "\n".join(process.tail() for process in [*self.engines, *self.workers])


def environment(extra: dict[str, str]) -> dict[str, str]:
    """A child's environment: this one's without DAPR_* (a DAPR_GRPC_ENDPOINT or DAPR_API_TOKEN of the caller's
    shell would point the SDK elsewhere), unbuffered, with ``extra``."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("DAPR_")}
    return {**env, "PYTHONUNBUFFERED": "1", "DAPR_RUNTIME_HOST": LOOPBACK, **extra}


def _python(name: str, args: list[str], workdir: Path, env: dict[str, str] | None = None) -> Process:
    return Process(name, [sys.executable, *args], workdir, environment(env or {}))


def deploy_sidecar(workdir: Path, profile: str | None, concurrency: int) -> Deployment:
    """``python -m sidecar serve`` for apps bench-a and bench-b (under cProfile into ``profile``, if given)."""
    state = workdir / "state.db"
    serve = ["-m", "sidecar", "serve", "--app", "bench-a=0", "--app", "bench-b=0", "--state", str(state)]
    if profile:
        Path(profile).mkdir(parents=True, exist_ok=True)
        serve = ["-m", "cProfile", "-o", str(Path(profile) / f"sidecar-c{concurrency}.prof"), *serve]
    engine = _python("sidecar", serve, workdir)
    deployment = Deployment([engine], [], [], state=state)
    try:
        engine.wait_for(r"ready; ", in_stderr=True)
        ports = dict(re.findall(r"app (\S+): gRPC on [\d.]+:(\d+)", engine.err.read_text()))
        _start_sdk_workers(deployment, workdir, ports)
    except BaseException:
        deployment.stop()
        raise
    return deployment


def _start_sdk_workers(deployment: Deployment, workdir: Path, grpc_ports: dict[str, str]) -> None:
    """The workflow worker (bench-a) and the activity worker (bench-b) on the Dapr SDK, each talking to its
    app's gRPC port; the client schedules on bench-a. Returns once both workers serve."""
    for app_id, role in (("bench-a", "workflow"), ("bench-b", "activity")):
        env = {"APP_ID": app_id, "DAPR_GRPC_PORT": grpc_ports[app_id]}
        deployment.workers.append(_python(app_id, ["-m", "bench._dapr", role], workdir, env))
    for worker in deployment.workers:
        worker.ready()
    deployment.client = ["-m", "bench._dapr", "client"]
    deployment.client_env = {"APP_ID": "bench-a", "DAPR_GRPC_PORT": grpc_ports["bench-a"]}


def deploy_peer(workdir: Path, concurrency: int) -> Deployment:
    """durabletask's in-memory backend in a process of its own, and one worker for the workflow and activities."""
    # One backend thread per waiting client and per work-item stream, plus room for completions.
    engine = _python("peer-backend", ["-m", "bench._peer", "backend", str(concurrency + 32)], workdir)
    deployment = Deployment([engine], [], [])
    try:
        port = str(engine.ready()["port"])
        deployment.workers.append(_python("peer-worker", ["-m", "bench._peer", "worker", port], workdir))
        deployment.workers[0].ready()
    except BaseException:
        deployment.stop()
        raise
    deployment.client = ["-m", "bench._peer", "client", port]
    return deployment


def deploy_daprd(workdir: Path) -> Deployment:
    """placement, scheduler and one daprd per app (the flags `make run-dapr` uses), the actor state store in an
    embedded PostgreSQL of its own, and the same Dapr SDK workers and client as the sidecar's run."""
    from common.db import ensure_database, libpq_url
    from common.embedded_db import start_embedded
    from realdapr.binaries import find
    from realdapr.commands import control_plane_commands, control_plane_health, daprd_command, daprd_environment
    from realdapr.ports import ControlPlanePorts
    from realdapr.resources import state_store_yaml
    from sidecar.template import AppSpec

    dapr = find()
    assert dapr is not None  # checked before any run starts
    pgdata = workdir / "pg"
    server = start_embedded(pgdata)
    deployment = Deployment([], [], [], store=pgdata)
    try:
        asyncio.run(ensure_database(server, "bench_workflows"))
        resources = workdir / "resources"
        resources.mkdir()
        (resources / "store.yaml").write_text(state_store_yaml(libpq_url(server, "bench_workflows")))
        ports = ControlPlanePorts.from_bases(0, 0)
        env = environment(daprd_environment({}))
        for name, command in control_plane_commands(dapr, ports, workdir / "scheduler", "warn").items():
            deployment.engines.append(Process(name, command, workdir, env))
        grpc_ports = {}
        urls = control_plane_health(ports)
        for app_id in ("bench-a", "bench-b"):
            grpc_ports[app_id], http = free_port(), free_port()
            app = AppSpec(app_id=app_id, app_dir=workdir, command=("none",))
            command = daprd_command(app, dapr, grpc_ports[app_id], http, resources, None, ports, "warn")
            deployment.engines.append(Process(f"{app_id}-daprd", command, workdir, env))
            urls[f"{app_id} daprd"] = f"http://{LOOPBACK}:{http}/v1.0/healthz"
        health.wait_healthy(
            urls,
            READY_TIMEOUT,
            "Dapr",
            running=lambda: all(p.running() for p in deployment.engines),
            context=deployment.tails,
        )
        _start_sdk_workers(deployment, workdir, {app: str(port) for app, port in grpc_ports.items()})
    except BaseException:
        deployment.stop()
        raise
    return deployment


def run_client(
    deployment: Deployment, workdir: Path, prefix: str, workflows: int, concurrency: int, activities: int
) -> dict[str, Any]:
    """Run the load's client on ``deployment`` to its end; what it measured (see ``bench._load.drive``)."""
    cmd = [sys.executable, *deployment.client, prefix, str(workflows), str(concurrency), str(activities)]
    err_path = workdir / f"client-{prefix}.err"
    with open(err_path, "wb") as err:
        done = subprocess.run(
            cmd, stdout=subprocess.PIPE, stderr=err, env=environment(deployment.client_env), timeout=CLIENT_TIMEOUT
        )
    if done.returncode != 0:
        raise RuntimeError(
            f"the {prefix} client failed (exit {done.returncode}):\n"
            f"{err_path.read_text(errors='replace')[-3000:]}\n{deployment.tails()}"
        )
    result: dict[str, Any] = json.loads(done.stdout.decode().strip().splitlines()[-1])
    return result


def persisted(state: Path, expected: int) -> dict[str, Any]:
    """Read the stopped sidecar's state file back: every workflow must be there, completed. Reads the tables of
    ``sidecar.store``'s schema directly, read-only (the store itself opens its file for writing)."""
    db = sqlite3.connect(f"file:{state}?mode=ro", uri=True)
    try:
        completed = db.execute("SELECT count(*) FROM instances WHERE completed = 1").fetchone()[0]
        history = db.execute("SELECT count(*) FROM history").fetchone()[0]
    finally:
        db.close()
    if completed != expected:
        raise RuntimeError(f"the state file holds {completed} completed workflows, expected {expected}")
    size = sum(p.stat().st_size for p in state.parent.glob(state.name + "*"))
    return {"completed_instances": completed, "history_events": history, "file_mb": round(size / 2**20, 1)}
