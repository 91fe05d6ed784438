"""Processes the tests start and share: ``python -m sidecar serve`` for some app IDs, on free ports, the stop of
a runner started in a session of its own, and which of their health URLs answer."""

from __future__ import annotations

import contextlib
import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import Iterator, Mapping
from pathlib import Path

from tests.support import REPO


@contextlib.contextmanager
def sidecar_serving(
    apps: list[str],
    state: Path,
    env: Mapping[str, str] | None = None,
    http: bool = False,
    python: str = sys.executable,
    cwd: Path = REPO,
) -> Iterator[dict[str, tuple[int, int | None]]]:
    """``python -m sidecar serve`` for ``apps`` until the block ends (``python``: which interpreter, and so which
    installation of the sidecar); yields app ID -> (gRPC port, HTTP port or None) as the sidecar logged them."""
    args = [python, "-m", "sidecar", "serve", "--state", str(state)]
    for app in apps:
        args += ["--app", f"{app}=0:0" if http else f"{app}=0"]
    proc = subprocess.Popen(args, cwd=cwd, stderr=subprocess.PIPE, text=True, env={**os.environ, **(env or {})})
    try:
        seen = ""
        deadline = time.monotonic() + 30
        while "ready;" not in seen and time.monotonic() < deadline and proc.poll() is None:
            seen += proc.stderr.readline()
        ports = {
            app: (int(grpc), int(http_port) if http_port else None)
            for app, grpc, http_port in re.findall(r"app (\S+): gRPC on [\d.]+:(\d+)(?:, HTTP on [\d.]+:(\d+))?", seen)
        }
        assert set(ports) == set(apps), f"the sidecar did not become ready:\n{seen}"
        yield ports
    finally:
        proc.terminate()
        proc.wait(10)


def stop_runner(proc: subprocess.Popen, timeout: float = 60) -> None:
    """SIGTERM a runner (``python -m sidecar run``, ``python -m realdapr run``) started with
    ``start_new_session=True``; if it has not stopped within ``timeout``, SIGKILL its whole group."""
    if proc.poll() is not None:
        return
    proc.send_signal(signal.SIGTERM)
    try:
        proc.wait(timeout)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
