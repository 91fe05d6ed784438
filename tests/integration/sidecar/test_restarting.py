"""``python -m sidecar.restarting -- COMMAND``, the restart wrapper ``dapr.yaml``'s apps run under for the Dapr
CLI (which starts an app once and never again): it starts the command again when it exits, with the runners'
backoff, passes its output on unprefixed, stops it on SIGTERM and exits, and takes it down when killed itself."""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from pathlib import Path

import psutil

from tests.support import REPO

# Exits with 70 on its first two runs (as a crash_after fault does), then stays up; one line per start.
CRASHES_TWICE = """\
import os, sys, time
from pathlib import Path
runs = Path(sys.argv[1])
runs.write_text(runs.read_text() + "x" if runs.exists() else "x")
print("run", len(runs.read_text()), "pid", os.getpid(), flush=True)
if len(runs.read_text()) <= 2:
    sys.exit(70)
time.sleep(120)
"""


def _wrapper(tmp_path: Path) -> tuple[subprocess.Popen[str], Path]:
    (tmp_path / "app.py").write_text(CRASHES_TWICE)
    runs = tmp_path / "runs"
    proc = subprocess.Popen(
        [sys.executable, "-m", "sidecar.restarting", "--", sys.executable, str(tmp_path / "app.py"), str(runs)],
        cwd=REPO,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    return proc, runs


def _wait_runs(runs: Path, count: int, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while not (runs.exists() and len(runs.read_text()) >= count):
        assert time.monotonic() < deadline, f"the command did not start {count} times"
        time.sleep(0.1)


def _child(proc: subprocess.Popen[str]) -> psutil.Process:
    deadline = time.monotonic() + 10
    while True:
        children = psutil.Process(proc.pid).children()
        if children:
            return children[0]
        assert time.monotonic() < deadline
        time.sleep(0.1)


def test_a_command_that_exits_is_started_again_and_sigterm_stops_it_and_the_wrapper(tmp_path: Path) -> None:
    proc, runs = _wrapper(tmp_path)
    _wait_runs(runs, 3)
    time.sleep(0.5)
    child = _child(proc)
    proc.send_signal(signal.SIGTERM)
    out, err = proc.communicate(timeout=30)
    assert proc.returncode == 0
    assert not child.is_running()
    assert [line.split(" pid")[0] for line in out.splitlines()] == ["run 1", "run 2", "run 3"]  # unprefixed
    restarts = [line for line in err.splitlines() if "exited with code 70" in line]
    assert len(restarts) == 2 and "restarting in 0.5 s" in restarts[0] and "restarting in 1.0 s" in restarts[1]


def test_the_command_dies_with_a_killed_wrapper(tmp_path: Path) -> None:
    proc, runs = _wrapper(tmp_path)
    _wait_runs(runs, 3)
    time.sleep(0.5)
    child = _child(proc)
    proc.kill()
    proc.communicate(timeout=30)
    child.wait(10)  # PR_SET_PDEATHSIG: psutil.TimeoutExpired if it outlived the wrapper


def test_without_a_command_it_says_how_to_use_it() -> None:
    done = subprocess.run([sys.executable, "-m", "sidecar.restarting"], cwd=REPO, capture_output=True, text=True)
    assert done.returncode == 2 and "usage: python -m sidecar.restarting -- COMMAND" in done.stderr
