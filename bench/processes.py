"""The processes a benchmark starts: each in a session of its own, its stdout and stderr in files of the run's
folder, waited for by a line it prints, and stopped with SIGTERM, then SIGKILL of its whole group."""

from __future__ import annotations

import contextlib
import json
import os
import re
import signal
import subprocess
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
READY_TIMEOUT = 60.0


class Process:
    """One started process: ``NAME.out`` and ``NAME.err`` in ``folder`` hold what it prints."""

    def __init__(self, name: str, command: list[str], folder: Path, env: Mapping[str, str] | None = None) -> None:
        self.name = name
        self.out = folder / f"{name}.out"
        self.err = folder / f"{name}.err"
        with open(self.out, "wb") as out, open(self.err, "wb") as err:
            self.proc = subprocess.Popen(
                command,
                cwd=REPO,
                stdout=out,
                stderr=err,
                stdin=subprocess.DEVNULL,
                env=dict(os.environ if env is None else env),
                start_new_session=True,
            )

    @property
    def pid(self) -> int:
        return self.proc.pid

    def running(self) -> bool:
        return self.proc.poll() is None

    def wait_for(self, pattern: str, in_stderr: bool = False, timeout: float = READY_TIMEOUT) -> re.Match[str]:
        """The first match of ``pattern`` (a multi-line regex) in what it printed; RuntimeError, with its log's
        tail, when it exits or ``timeout`` passes first."""
        path = self.err if in_stderr else self.out
        regex = re.compile(pattern, re.MULTILINE)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            found = regex.search(path.read_text(errors="replace"))
            if found:
                return found
            if not self.running():
                raise RuntimeError(
                    f"{self.name} exited with code {self.proc.returncode} before it was ready:\n{self.tail()}"
                )
            time.sleep(0.05)
        raise RuntimeError(f"{self.name} was not ready within {timeout:.0f} s:\n{self.tail()}")

    def ready(self) -> dict[str, Any]:
        """The JSON line a worker or backend prints once it serves (see ``bench._load.serve_until_stopped``)."""
        line: dict[str, Any] = json.loads(self.wait_for(r'^\{"ready": true.*$').group(0))
        return line

    def terminate(self) -> None:
        if self.running():
            self.proc.send_signal(signal.SIGTERM)

    def wait_or_kill(self, timeout: float) -> None:
        """Wait up to ``timeout`` seconds for it to exit, then SIGKILL its process group."""
        try:
            self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait()

    def stop(self, timeout: float = 10.0) -> None:
        self.terminate()
        self.wait_or_kill(timeout)

    def tail(self, lines: int = 25) -> str:
        text = self.err.read_text(errors="replace") + self.out.read_text(errors="replace")
        return "\n".join(f"  [{self.name}] {line}" for line in text.splitlines()[-lines:])


class Processes:
    """Processes started one after the other in ``folder`` and stopped together, the last started first."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.started: list[Process] = []

    def start(self, name: str, command: list[str], env: Mapping[str, str] | None = None) -> Process:
        process = Process(name, command, self.folder, env)
        self.started.append(process)
        return process

    def tails(self) -> str:
        return "\n".join(process.tail() for process in self.started)

    def stop(self, timeout: float = 60.0) -> None:
        """SIGTERM to every one at once, then up to ``timeout`` seconds each before a SIGKILL."""
        for process in reversed(self.started):
            process.terminate()
        for process in reversed(self.started):
            process.wait_or_kill(timeout)
        self.started.clear()
