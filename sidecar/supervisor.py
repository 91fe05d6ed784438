"""Runs each app's command in its own process group, prefixes its output with its app ID, restarts it
with exponential backoff when it exits on its own, and stops every group on request. Keeps each app's last
lines (for a runner that must say why something did not start) and can kill one app on request (it is then
restarted like any app that died). Knows nothing of templates or the workflow engine."""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import ctypes.util
import logging
import os
import signal
import sys
from collections import deque
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

log = logging.getLogger("sidecar.supervisor")

_CHUNK = 64 * 1024
_PR_SET_PDEATHSIG = 1  # <linux/prctl.h>
TAIL_LINES = 200


@dataclass(frozen=True)
class Launch:
    """How to start one app: its command (run directly, no shell), folder and full environment."""

    app_id: str
    command: Sequence[str]
    cwd: Path
    env: Mapping[str, str]


@dataclass
class Backoff:
    """Delay before a restart: ``initial`` doubling up to ``maximum``, back to ``initial`` once the
    app has run for ``stable_after`` seconds (a crash after a long healthy run is a new incident)."""

    initial: float = 0.5
    maximum: float = 10.0
    stable_after: float = 30.0
    _next: float | None = None

    def after_exit(self, ran_for: float) -> float:
        if self._next is None or ran_for >= self.stable_after:
            self._next = self.initial
        delay = self._next
        self._next = min(delay * 2, self.maximum)
        return delay


def on_stop_signals(stop: Callable[[], None], kill_now: Callable[[int], None], logger: logging.Logger = log) -> None:
    """In the running loop: the first SIGINT or SIGTERM calls ``stop`` (stop gracefully), any later one
    ``kill_now(signum)``, as a user pressing Ctrl-C twice expects."""
    loop = asyncio.get_running_loop()
    seen: list[int] = []

    def handle(signum: int) -> None:
        if seen:
            kill_now(signum)
            return
        seen.append(signum)
        logger.info("%s received: stopping (again to kill at once)", signal.Signals(signum).name)
        stop()

    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, handle, sig)


class Supervisor:
    """Keeps every app running until ``stop`` is set, then ends each app's process group: SIGTERM,
    up to ``grace`` seconds, then SIGKILL. ``kill_now()`` (a second Ctrl-C) skips the wait. Each line of
    output gets ``[app id] `` before it unless ``prefix`` is false."""

    def __init__(
        self,
        launches: Sequence[Launch],
        *,
        grace: float = 10.0,
        out: BinaryIO | None = None,
        err: BinaryIO | None = None,
        prefix: bool = True,
    ) -> None:
        out = out or sys.stdout.buffer
        err = err or sys.stderr.buffer
        self._apps = [_App(launch, grace, out, err, prefix) for launch in launches]

    async def run(self, stop: asyncio.Event) -> None:
        """Start every app and return once ``stop`` is set and all of them are gone."""
        await asyncio.gather(*(app.supervise(stop) for app in self._apps))

    def kill_now(self) -> None:
        for app in self._apps:
            app.kill_now()

    def tails(self) -> dict[str, list[str]]:
        """Each app's last lines of output (stdout and stderr, up to ``TAIL_LINES``), by app ID."""
        return {app.launch.app_id: list(app.tail) for app in self._apps}

    def pid(self, app_id: str) -> int | None:
        """The pid of ``app_id``'s process while it runs, else None."""
        return next((app.pgid for app in self._apps if app.launch.app_id == app_id), None)

    def kill(self, app_id: str) -> bool:
        """SIGKILL ``app_id``'s process group, as a crash would: it is restarted after its backoff. False when it
        was not running."""
        for app in self._apps:
            if app.launch.app_id == app_id and app.pgid is not None:
                _signal_group(app.pgid, signal.SIGKILL)
                return True
        return False

    def restart(self, app_id: str) -> bool:
        """Restart ``app_id`` as a Kubernetes liveness failure does: SIGTERM to its process group, SIGKILL if it
        still runs after the grace; then it is started again, like any app that exited. False when it was not
        running."""
        for app in self._apps:
            if app.launch.app_id == app_id and app.pgid is not None:
                pgid = app.pgid
                _signal_group(pgid, signal.SIGTERM)
                asyncio.get_running_loop().call_later(app.grace, app.kill_if_still, pgid)
                return True
        return False


class _App:
    def __init__(self, launch: Launch, grace: float, out: BinaryIO, err: BinaryIO, prefix: bool = True) -> None:
        self.launch = launch
        self.prefix = f"[{launch.app_id}] ".encode() if prefix else b""
        self.grace = grace
        self.out = out
        self.err = err
        self.backoff = Backoff()
        self.pgid: int | None = None
        self.killing = asyncio.Event()
        self.tail: deque[str] = deque(maxlen=TAIL_LINES)

    async def supervise(self, stop: asyncio.Event) -> None:
        loop = asyncio.get_running_loop()
        name = self.launch.app_id
        while not stop.is_set():
            started = loop.time()
            code = await self._run_once(stop)
            if stop.is_set():
                log.info("app %s stopped (%s)", name, _describe(code))
                break
            ran_for = loop.time() - started
            delay = self.backoff.after_exit(ran_for)
            log.warning("app %s %s after %.1f s; restarting in %.1f s", name, _describe(code), ran_for, delay)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), delay)

    def kill_if_still(self, pgid: int) -> None:
        """SIGKILL process group ``pgid`` if it is still this app's running one."""
        if self.pgid == pgid:
            _signal_group(pgid, signal.SIGKILL)

    def kill_now(self) -> None:
        self.killing.set()
        if self.pgid is not None:
            _signal_group(self.pgid, signal.SIGKILL)

    async def _run_once(self, stop: asyncio.Event) -> int | None:
        launch = self.launch
        try:
            # A session of its own: Ctrl-C in the terminal reaches only us, and the whole group
            # (the app and anything it forked) can be signalled and checked as one.
            proc = await asyncio.create_subprocess_exec(
                *launch.command,
                cwd=launch.cwd,
                env=dict(launch.env),
                stdin=asyncio.subprocess.DEVNULL,
                stdout=asyncio.subprocess.PIPE,
                stderr=asyncio.subprocess.PIPE,
                start_new_session=True,
                preexec_fn=_die_with_parent(),
                limit=_CHUNK,
            )
        except OSError as exc:
            log.error("app %s: cannot start %s: %s", launch.app_id, list(launch.command), exc)
            return None
        self.pgid = proc.pid
        log.info("app %s started (pid %d): %s", launch.app_id, proc.pid, " ".join(launch.command))
        prefix = self.prefix
        pumps = [
            asyncio.create_task(_pump(proc.stdout, prefix, self.out, self.tail)),
            asyncio.create_task(_pump(proc.stderr, prefix, self.err, self.tail)),
        ]
        exited = asyncio.create_task(proc.wait())
        stopping = asyncio.create_task(stop.wait())
        await asyncio.wait({exited, stopping}, return_when=asyncio.FIRST_COMPLETED)
        stopping.cancel()
        # Also after a crash: children the app left behind would hold its port across the restart.
        await self._end_group(proc)
        code = await exited
        self.pgid = None
        # A detached grandchild may still hold the pipes open; don't wait for it forever.
        _, late = await asyncio.wait(pumps, timeout=1.0)
        for task in late:
            task.cancel()
        return code

    async def _end_group(self, proc: asyncio.subprocess.Process) -> None:
        loop = asyncio.get_running_loop()
        pgid = proc.pid
        if not _group_alive(pgid):
            return
        if proc.returncode is None:
            log.info("app %s: stopping (SIGTERM to process group %d)", self.launch.app_id, pgid)
        _signal_group(pgid, signal.SIGTERM)
        deadline = loop.time() + self.grace
        while loop.time() < deadline and not self.killing.is_set():
            if proc.returncode is not None and not _group_alive(pgid):
                return
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.killing.wait(), 0.05)
        if not self.killing.is_set():
            log.warning(
                "app %s did not stop within %.0f s; killing process group %d", self.launch.app_id, self.grace, pgid
            )
        _signal_group(pgid, signal.SIGKILL)


async def _pump(stream: asyncio.StreamReader | None, prefix: bytes, out: BinaryIO, tail: deque[str]) -> None:
    """Copy ``stream`` to ``out`` line by line with ``prefix``, keeping the last lines in ``tail``; an over-long
    line is cut, not held."""
    if stream is None:
        return
    pending = b""
    while chunk := await stream.read(_CHUNK):
        *lines, pending = (pending + chunk).split(b"\n")
        if len(pending) >= _CHUNK:
            lines.append(pending)
            pending = b""
        _write(out, b"".join(prefix + line + b"\n" for line in lines))
        tail.extend(line.decode(errors="replace") for line in lines)
    if pending:
        _write(out, prefix + pending + b"\n")
        tail.append(pending.decode(errors="replace"))


def _write(out: BinaryIO, data: bytes) -> None:
    if not data:
        return
    # Our own stdout going away (a closed pipe) must not stop the apps or the drain of their pipes.
    with contextlib.suppress(OSError, ValueError):
        out.write(data)
        out.flush()


def _die_with_parent() -> Callable[[], None] | None:
    """What the child runs between fork and exec so that it is SIGKILLed when the runner dies.

    Each app has a session of its own (above), so nothing else ends it when the runner itself is SIGKILLed
    (OOM killer, ``kill -9``): it would live on as an orphan holding its port and its worker stream, and a
    restarted runner could not start it again. Linux's PR_SET_PDEATHSIG survives exec; elsewhere, None.
    """
    if not sys.platform.startswith("linux"):
        return None
    libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)
    parent = os.getpid()

    def in_child() -> None:
        libc.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
        if os.getppid() != parent:  # the runner died before prctl took effect
            os.kill(os.getpid(), signal.SIGKILL)

    return in_child


def _signal_group(pgid: int, sig: signal.Signals) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pgid, sig)


def _group_alive(pgid: int) -> bool:
    """Whether any process of the group is still running. On Linux, zombies don't count: they are
    already dead, and PID 1 of a container may never reap the orphans among them."""
    try:
        entries = os.listdir("/proc")
    except OSError:
        entries = []
    if "self" not in entries:
        try:
            os.killpg(pgid, 0)
        except ProcessLookupError:
            return False
        except PermissionError:
            return True
        return True
    for entry in entries:
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat", "rb") as f:
                stat = f.read()
        except OSError:
            continue
        # The command name may hold spaces or parentheses: the fixed fields follow the last ')'.
        fields = stat[stat.rindex(b")") + 2 :].split()
        state, pgrp = fields[0], int(fields[2])
        if pgrp == pgid and state not in (b"Z", b"X"):
            return True
    return False


def _describe(code: int | None) -> str:
    if code is None:
        return "could not be started"
    if code < 0:
        try:
            return f"was killed by {signal.Signals(-code).name}"
        except ValueError:
            return f"was killed by signal {-code}"
    return f"exited with code {code}"
