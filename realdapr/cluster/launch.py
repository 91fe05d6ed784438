"""A cluster started by another process (the tests, the chaos run, the benchmark): why it cannot run here, its
runner's command line, and its start and stop (the runner in a session of its own, its output to a log file)."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Mapping
from pathlib import Path

from devtools.processes import stop_runner

from . import netns
from .run import state_file
from .state import Cluster

REPO = Path(__file__).resolve().parents[2]
START_TIMEOUT = 300.0


def why_not_here() -> str | None:
    """None when a cluster can run on this machine, else why not (root, Dapr with sentry, kustomize)."""
    reason = netns.why_not_capable()
    if reason:
        return reason
    from devtools.k8s import find as find_tools

    from ..binaries import DaprError, find

    try:
        dapr = find()
    except DaprError as err:
        return str(err)
    if dapr is None or dapr.sentry is None:
        return "Dapr 1.18 with sentry is not installed: run `make dapr`"
    if find_tools() is None:
        return "kustomize is not installed: run `make k8s-tools`"
    return None


def command(
    data_dir: Path, *, prefix: str, subnet: str, env: Mapping[str, str], nodes: int = 0, extra: tuple[str, ...] = ()
) -> list[str]:
    """The runner's command line: free proxy ports, ``env`` added to every app."""
    args = [sys.executable, "-m", "realdapr.cluster", "--data-dir", str(data_dir), "--prefix", prefix, "run"]
    args += ["--subnet", subnet, "--proxy-offset", "0", *extra]
    if nodes:
        args += ["--nodes", str(nodes)]
    for name, value in env.items():
        args += ["--env", f"{name}={value}"]
    return args


def start(
    cmd: list[str], data_dir: Path, log_path: Path, timeout: float = START_TIMEOUT
) -> tuple[subprocess.Popen[bytes], Cluster]:
    """Start the runner; return it and the cluster once up. RuntimeError (with the log's tail) if it does not come
    up; the runner is then stopped."""
    state_file(data_dir).unlink(missing_ok=True)
    with open(log_path, "ab") as log:
        proc = subprocess.Popen(
            cmd,
            cwd=REPO,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            env={**os.environ, "PYTHONUNBUFFERED": "1"},
        )
    try:
        return proc, Cluster.wait(state_file(data_dir), timeout, lambda: proc.poll() is None)
    except TimeoutError as err:
        stop(proc)
        tail = "\n".join(log_path.read_text(errors="replace").splitlines()[-40:])
        raise RuntimeError(f"{err}\n{tail}") from None


def stop(proc: subprocess.Popen[bytes], timeout: float = 120) -> None:
    """SIGTERM the runner (it stops everything and removes the network); SIGKILL its group after ``timeout``."""
    stop_runner(proc, timeout)
