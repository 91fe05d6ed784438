"""What the benchmarks measure of the processes they start (psutil): CPU seconds and RSS of named groups of
processes, a thread keeping each group's peak RSS, and the process trees the groups come from."""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Iterable, Mapping
from pathlib import Path

import psutil

Groups = Mapping[str, Iterable[psutil.Process]]


def tree(root: psutil.Process) -> list[psutil.Process]:
    """``root`` and every process below it; none when it has gone."""
    try:
        return [root, *root.children(recursive=True)]
    except psutil.Error:
        return []


def postmaster(pgdata: Path) -> psutil.Process:
    """The running PostgreSQL server of the data folder ``pgdata``."""
    return psutil.Process(int((pgdata / "postmaster.pid").read_text().split()[0]))


def cpu_seconds(groups: Groups) -> dict[str, float]:
    """User plus system CPU seconds of each group so far; a process that has gone counts for nothing."""
    out: dict[str, float] = {}
    for name, procs in groups.items():
        total = 0.0
        for proc in procs:
            with contextlib.suppress(psutil.Error):
                times = proc.cpu_times()
                total += times.user + times.system
        out[name] = total
    return out


def rss_bytes(procs: Iterable[psutil.Process]) -> int:
    """The summed resident memory of ``procs`` now; a process that has gone counts for nothing."""
    total = 0
    for proc in procs:
        with contextlib.suppress(psutil.Error):
            total += proc.memory_info().rss
    return total


class PeakRss:
    """Samples each group's summed RSS every ``every`` seconds on a thread of its own and keeps the highest;
    ``stop()`` takes a last sample."""

    def __init__(self, groups: Groups, every: float = 0.05) -> None:
        self._groups = {name: list(procs) for name, procs in groups.items()}
        self.peak = {name: 0 for name in groups}
        self._every = every
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, daemon=True)
        self._thread.start()

    def _loop(self) -> None:
        while not self._stop.wait(self._every):
            self.sample()

    def sample(self) -> None:
        for group, procs in self._groups.items():
            self.peak[group] = max(self.peak[group], rss_bytes(procs))

    def stop(self) -> None:
        self.sample()
        self._stop.set()
        self._thread.join()
