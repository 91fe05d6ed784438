"""Processes the tests start and share: ``python -m sidecar serve`` for some app IDs, on free ports, and which
of their health URLs answer. Stopping a runner is ``devtools.processes.stop_runner``, which the tools use too."""

from __future__ import annotations

import contextlib
import os
import re
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
