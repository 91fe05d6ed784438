"""Stopping a runner (``python -m sidecar run``, ``python -m realdapr run``, ``python -m realdapr.cluster run``)
that another process started in a session of its own: the tests, the chaos run and the cluster launcher."""

from __future__ import annotations

import os
import signal
import subprocess
from typing import Any


def stop_runner(proc: subprocess.Popen[Any], timeout: float = 60) -> None:
    """SIGTERM ``proc`` (a runner stops what it started); if it has not stopped within ``timeout``, SIGKILL its
    whole process group, which needs ``start_new_session=True`` at its start. Nothing if it has already exited."""
    if proc.poll() is not None:
        return
    proc.send_signal(signal.SIGTERM)
    try:
        proc.wait(timeout)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
