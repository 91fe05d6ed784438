"""What another process (the tests, the chaos run, the benchmark) reads of a running cluster: the ``cluster.json``
the runner writes once everything answers, and the blows it can strike from outside: a node's processes killed or
stopped, its links cut, a control-plane process killed, PostgreSQL restarted. Each blow is carried out on the
namespaces, never on process names, so it cannot hit anything outside the run.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from . import database, netns


@dataclass(frozen=True)
class Cluster:
    doc: dict[str, Any]

    @classmethod
    def read(cls, path: Path) -> Cluster | None:
        try:
            return cls(json.loads(path.read_text()))
        except (OSError, ValueError):
            return None

    @classmethod
    def wait(cls, path: Path, timeout: float, running: Callable[[], bool]) -> Cluster:
        """The state once the runner has written it; TimeoutError after ``timeout`` or once ``running()`` is false."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline and running():
            found = cls.read(path)
            if found is not None:
                return found
            time.sleep(0.5)
        raise TimeoutError(f"the cluster did not come up ({'gave up' if running() else 'its runner exited'})")

    @property
    def proxies(self) -> dict[str, str]:
        """App id -> the loopback URL spreading over its replicas."""
        return dict(self.doc["proxies"])

    @property
    def nodes(self) -> list[str]:
        return sorted({str(p["node"]) for p in self.doc["pods"].values()})

    def pods(self, app: str | None = None, node: str | None = None) -> dict[str, dict[str, str]]:
        """Pod name -> its app, node, address, app URL and daprd URL; only ``app``'s or ``node``'s when given."""
        return {
            name: pod
            for name, pod in self.doc["pods"].items()
            if (app is None or pod["app"] == app) and (node is None or pod["node"] == node)
        }

    def host(self, name: str) -> netns.Host:
        return netns.Host(**self.doc["hosts"][name])

    def node_hosts(self, node: str) -> list[netns.Host]:
        return [self.host(name) for name in self.pods(node=node)]

    # --- blows ---------------------------------------------------------------------------------------

    def crash_node(self, node: str) -> list[int]:
        """SIGKILL every process of the node's pods (the runner's supervisor starts them again, as a node that
        reboots restarts its pods)."""
        return netns.kill_hosts(self.node_hosts(node))

    def pause_node(self, node: str) -> list[int]:
        return netns.signal_hosts(self.node_hosts(node), signal.SIGSTOP)

    def resume_node(self, node: str) -> list[int]:
        return netns.signal_hosts(self.node_hosts(node), signal.SIGCONT)

    def partition_node(self, node: str, cut: bool = True) -> None:
        """Cut the node's pods off the bridge (from the other node, the control plane and the database), or
        restore them."""
        netns.set_links(self.node_hosts(node), up=not cut)

    def kill_pod_process(self, pod: str, daprd: bool) -> list[int]:
        """SIGKILL the pod's daprd or its app (the runner restarts it)."""
        return self._kill_in(self.host(pod), lambda cmd: cmd[0].endswith("/daprd") == daprd)

    def kill_control_plane(self, name: str) -> list[int]:
        """SIGKILL placement, the scheduler or sentry on the control-plane host."""
        return self._kill_in(self.host(self.doc["control_plane"]["host"]), lambda cmd: cmd[0].endswith(f"/{name}"))

    def restart_postgres(self) -> None:
        db = self.doc["database"]
        database.restart(Path(db["pgdata"]), self.host(db["host"]), "immediate")

    def _kill_in(self, host: netns.Host, chosen: Callable[[list[str]], bool]) -> list[int]:
        killed = []
        for pid in netns.pids_of(host):
            try:
                cmd = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
                args = [part.decode(errors="replace") for part in cmd if part]
                if args and chosen(args):
                    signal_pid(pid, signal.SIGKILL)
                    killed.append(pid)
            except OSError:
                continue
        return killed


def signal_pid(pid: int, sig: signal.Signals) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, sig)
