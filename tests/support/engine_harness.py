"""Real processes for the engine tests, on either engine: ``python -m sidecar serve`` serving several app IDs
(``Sidecar``), or real placement, scheduler and one daprd per app ID on a PostgreSQL state store (``Daprd``);
and ``worker_app.py`` workers, each in its own process group so a test can SIGKILL exactly one of them.

Both engines offer ``start()`` (a restart reuses the first start's ports), ``stop()``, ``kill()`` (SIGKILL of
what plays daprd; daprd's control plane stays up), ``close()``, ``grpc_port(app)`` and ``http_port(app)``.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

import grpc
from dapr.ext.workflow import DaprWorkflowClient, WorkflowStatus

from devtools.health import wait_healthy
from devtools.ports import free_port
from realdapr.binaries import DaprBinaries
from realdapr.commands import control_plane_commands, control_plane_health, daprd_command, daprd_environment
from realdapr.ports import ControlPlanePorts
from realdapr.resources import state_store_yaml
from sidecar.template import AppSpec
from tests.support import REPO

WORKER_APP = Path(__file__).with_name("worker_app.py")
# Long enough for a worker to reconnect after a sidecar restart (the SDK backs off 2-3 s, then 4-5 s,
# up to 15 s) on a loaded 2-core machine; a wait that succeeds returns as soon as it can.
WAIT = 60.0
T = TypeVar("T")

_LISTEN = re.compile(r"app (\S+): gRPC on 127\.0\.0\.1:(\d+)(?:, HTTP on 127\.0\.0\.1:(\d+))?")


def unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


def completes(client: DaprWorkflowClient, instance_id: str) -> bool:
    """Whether the instance ends COMPLETED (waiting for it up to ``WAIT``)."""
    state = client.wait_for_workflow_completion(instance_id, timeout_in_seconds=WAIT)
    return state is not None and state.runtime_status == WorkflowStatus.COMPLETED


def eventually(probe: Callable[[], T], timeout: float = WAIT, every: float = 0.1, what: str = "condition") -> T:
    """Poll ``probe`` until it returns something truthy; gRPC errors (a restarting sidecar) count as "not yet"."""
    deadline = time.monotonic() + timeout
    last: object = None
    while time.monotonic() < deadline:
        try:
            value = probe()
            if value:
                return value
            last = value
        except grpc.RpcError as exc:
            last = exc
        time.sleep(every)
    raise AssertionError(f"timed out after {timeout:.0f}s waiting for {what}; last seen: {last!r}")


def _kill_group(proc: subprocess.Popen, sig: int) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, sig)


class _ProcessGroup:
    """A child started in its own session (``self.proc``), stopped or killed as a whole group."""

    proc: subprocess.Popen | None

    def kill(self) -> None:
        """SIGKILL: no shutdown code runs, exactly like a crash."""
        if self.proc is not None and self.proc.poll() is None:
            _kill_group(self.proc, signal.SIGKILL)
            self.proc.wait(10)

    def stop(self) -> None:
        if self.proc is None or self.proc.poll() is not None:
            return
        _kill_group(self.proc, signal.SIGTERM)
        try:
            self.proc.wait(5)
        except subprocess.TimeoutExpired:
            self.kill()


class Sidecar(_ProcessGroup):
    """``python -m sidecar serve`` for ``apps``; the first start picks free ports (``APP=0:0``) and a
    restart reuses them, as a real daprd keeps its ports."""

    name = "sidecar"

    def __init__(self, apps: list[str], state: Path, log: Path, extra_args: list[str] | None = None) -> None:
        self.apps = apps
        self.state = state
        self.log = log
        self.extra_args = extra_args or []
        self.ports: dict[str, tuple[int, int]] = {}
        self.proc: subprocess.Popen | None = None

    def command(self) -> list[str]:
        args = [sys.executable, "-m", "sidecar", "serve", "--state", str(self.state), *self.extra_args]
        for app in self.apps:
            grpc_port, http_port = self.ports.get(app, (0, 0))
            args += ["--app", f"{app}={grpc_port}:{http_port}"]
        return args

    def start(self) -> None:
        offset = self.log.stat().st_size if self.log.exists() else 0
        with open(self.log, "ab") as out:
            self.proc = subprocess.Popen(
                self.command(), cwd=REPO, stdout=out, stderr=subprocess.STDOUT, start_new_session=True
            )
        deadline = time.monotonic() + WAIT
        while time.monotonic() < deadline:
            text = self.log.read_text(errors="replace")[offset:]
            if "ready;" in text:
                for app, grpc_port, http_port in _LISTEN.findall(text):
                    self.ports[app] = (int(grpc_port), int(http_port))
                return
            if self.proc.poll() is not None:
                raise RuntimeError(f"the sidecar exited with {self.proc.returncode}:\n{text}")
            time.sleep(0.05)
        raise RuntimeError(f"the sidecar did not become ready:\n{self.log.read_text(errors='replace')[offset:]}")

    def grpc_port(self, app: str) -> int:
        return self.ports[app][0]

    def http_port(self, app: str) -> int:
        return self.ports[app][1]

    def close(self) -> None:
        self.stop()
        self.kill()


class _Process(_ProcessGroup):
    def __init__(self, command: list[str], log: Path, env: dict[str, str]) -> None:
        self.command, self.log, self.env = command, log, env
        self.proc: subprocess.Popen | None = None

    def launch(self) -> None:
        with open(self.log, "ab") as out:
            self.proc = subprocess.Popen(
                self.command,
                cwd=self.log.parent,
                env=self.env,
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )

    def running(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def tail(self) -> str:
        return self.log.read_text(errors="replace")[-4000:] if self.log.exists() else ""


class Daprd:
    """Real Dapr for ``apps``: placement and scheduler, then one daprd per app ID with no app port (the
    workers connect to their app's daprd gRPC port), all sharing one actor state store, a ``state.postgresql``
    v2 component on ``store_url`` (a database of this cluster's own). ``kill()`` SIGKILLs every daprd and leaves
    the control plane up; ``start()`` after it starts them again on the same ports, as ``Sidecar`` does."""

    name = "dapr"

    def __init__(self, apps: list[str], dapr: DaprBinaries, store_url: str, workdir: Path) -> None:
        self.apps, self.dapr, self.workdir = apps, dapr, workdir
        self.resources = workdir / "resources"
        self.resources.mkdir(parents=True, exist_ok=True)
        (self.resources / "statestore.yaml").write_text(state_store_yaml(store_url))
        self.env = daprd_environment(dict(os.environ))
        self.control_ports = ControlPlanePorts.from_bases(0, 0)
        # grpc, http, internal grpc, metrics: fixed for the cluster's life, so a restart keeps them.
        self.ports = {app: _daprd_ports() for app in apps}
        commands = control_plane_commands(dapr, self.control_ports, workdir / "scheduler-data", "info")
        self.control = [_Process(command, workdir / f"{name}.log", self.env) for name, command in commands.items()]
        self.daprds = {app: _Process(self._daprd_command(app), workdir / f"daprd-{app}.log", self.env) for app in apps}
        self._store_ready = False
        self._started: set[str] = set()  # apps whose daprd has been up once: their ports stay as they are

    def _daprd_command(self, app: str) -> list[str]:
        grpc_port, http_port, internal, metrics = self.ports[app]
        spec = AppSpec(app_id=app, app_dir=self.workdir, command=())
        return daprd_command(
            spec,
            self.dapr,
            grpc_port,
            http_port,
            self.resources,
            None,
            self.control_ports,
            "info",
            internal_grpc=internal,
            metrics=metrics,
        )

    def start(self) -> None:
        """Start the control plane (unless it runs) and every daprd; return once all are healthy."""
        if not all(p.running() for p in self.control):
            for process in self.control:
                process.kill()
                process.launch()
            self._wait_healthy(control_plane_health(self.control_ports), self.control)
        apps = [app for app in self.apps if not self.daprds[app].running()]
        if not self._store_ready and apps:
            # The state store creates its tables on first use; daprds that race at it on an empty database
            # fail ("type dapr_metadata already exists"), so the first one starts alone.
            self._launch([apps.pop(0)])
            self._store_ready = True
        self._launch(apps)

    def _launch(self, apps: list[str]) -> None:
        for app in apps:
            self.daprds[app].launch()
        try:
            self._wait_healthy(
                {app: f"http://127.0.0.1:{self.http_port(app)}/v1.0/healthz" for app in apps},
                [self.daprds[app] for app in apps],
            )
        except RuntimeError:
            # A port picked free can be taken by another process before daprd binds it. On a first start
            # (nothing yet depends on the ports) such a daprd gets new ports and one more try.
            lost = [
                app
                for app in apps
                if not self.daprds[app].running()
                and app not in self._started
                and "could not listen" in self.daprds[app].tail()
            ]
            if not lost or len(lost) < len([a for a in apps if not self.daprds[a].running()]):
                raise
            for app in lost:
                self.ports[app] = _daprd_ports()
                self.daprds[app].command = self._daprd_command(app)
            self._launch(lost)
        self._started.update(apps)

    def _wait_healthy(self, urls: dict[str, str], processes: list[_Process]) -> None:
        """Return once every URL answers; RuntimeError (``NotHealthy``) as soon as one of ``processes`` dies,
        with the logs of the dead ones, or after ``WAIT``, with the logs of all of them."""

        def logs() -> str:
            dead = [p for p in processes if not p.running()]
            return "\n".join(f"--- {p.log.name}\n{p.tail()}" for p in (dead or processes))

        wait_healthy(urls, WAIT, "Dapr", running=lambda: all(p.running() for p in processes), context=logs, every=0.1)

    def grpc_port(self, app: str) -> int:
        return self.ports[app][0]

    def http_port(self, app: str) -> int:
        return self.ports[app][1]

    def kill(self) -> None:
        """SIGKILL every daprd, as a crash would; placement and scheduler stay up."""
        for process in self.daprds.values():
            process.kill()

    def stop(self) -> None:
        for process in self.daprds.values():
            process.stop()

    def close(self) -> None:
        self.stop()
        for process in reversed(self.control):
            process.stop()
        for process in [*self.daprds.values(), *self.control]:
            process.kill()


def _daprd_ports() -> tuple[int, int, int, int]:
    """One daprd's gRPC, HTTP, internal gRPC and metrics ports: below the ephemeral range, so that a worker
    reconnecting between a SIGKILL of daprd and its restart cannot hold one of them as its source port."""
    return free_port(), free_port(), free_port(), free_port()


Engine = Sidecar | Daprd


class Worker(_ProcessGroup):
    """One ``worker_app.py`` process for ``app``; ``start`` returns once its work-item stream is open."""

    def __init__(
        self, app: str, name: str, port: int, workdir: Path, skip: tuple[str, ...] = (), flags: tuple[str, ...] = ()
    ) -> None:
        self.app, self.name, self.port, self.workdir, self.skip, self.flags = app, name, port, workdir, skip, flags
        self.proc: subprocess.Popen | None = None

    @property
    def _ready(self) -> Path:
        return self.workdir / f"{self.name}.ready"

    def launch(self) -> None:
        self._ready.unlink(missing_ok=True)
        env = {
            **os.environ,
            "ENGINE_TEST_LOG": str(self.workdir / "activities.jsonl"),
            "ENGINE_TEST_DIR": str(self.workdir),
        }
        args = [sys.executable, str(WORKER_APP), "--app", self.app, "--port", str(self.port), "--name", self.name]
        for name in self.skip:
            args += ["--skip", name]
        args += self.flags
        with open(self.workdir / f"{self.name}.log", "ab") as out:
            self.proc = subprocess.Popen(
                args, cwd=REPO, env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True
            )

    def wait_ready(self) -> None:
        deadline = time.monotonic() + WAIT
        while not self._ready.exists():
            if self.proc.poll() is not None or time.monotonic() > deadline:
                log = (self.workdir / f"{self.name}.log").read_text(errors="replace")
                raise RuntimeError(f"worker {self.name} of {self.app} did not start:\n{log[-3000:]}")
            time.sleep(0.05)


class Cluster:
    """One engine serving ``apps`` (the sidecar, or daprd), the workers started on it, and an SDK client per app."""

    def __init__(self, engine: Engine, workdir: Path) -> None:
        self.workdir = workdir
        self.engine = engine
        self.workers: list[Worker] = []
        self._clients: dict[str, DaprWorkflowClient] = {}

    def start_workers(self, *specs: tuple, flags: tuple[str, ...] = ()) -> list[Worker]:
        """Start workers given as (app, name[, skipped names]) in parallel, each with ``worker_app.py``'s
        command-line ``flags``; return once all are connected."""
        started = []
        for app, name, *skip in specs:
            worker = Worker(app, name, self.engine.grpc_port(app), self.workdir, tuple(skip[0]) if skip else (), flags)
            worker.launch()
            self.workers.append(worker)
            started.append(worker)
        for worker in started:
            worker.wait_ready()
        return started

    def client(self, app: str) -> DaprWorkflowClient:
        if app not in self._clients:
            self._clients[app] = DaprWorkflowClient(host="127.0.0.1", port=str(self.engine.grpc_port(app)))
        return self._clients[app]

    def reports(self, activity: str | None = None, key: object = None) -> list[dict]:
        """What the workers' activities reported, in order, optionally only for one activity and key."""
        path = self.workdir / "activities.jsonl"
        lines = [json.loads(line) for line in path.read_text().splitlines()] if path.exists() else []
        return [
            r for r in lines if (activity is None or r["activity"] == activity) and (key is None or r["key"] == key)
        ]

    def close(self) -> None:
        for client in self._clients.values():
            client.close()
        for worker in self.workers:
            worker.kill()
        self.engine.close()
