"""The system under chaos as a cluster (``--topology cluster``): ``realdapr.cluster`` with two nodes, each running
one replica of every app with its own daprd, its PostgreSQL on a host of its own, all in a folder and under a
namespace prefix of the run's own. The same interface as ``chaos.system.System`` (the injector and the checks do not
know the difference), the blows aimed at one replica, plus a cluster's own: a node crashed (every process of its
pods SIGKILLed; the runner's supervisor restarts them, as a rebooted node restarts its pods), paused (SIGSTOP, then
SIGCONT) and cut off the network (its links down, then up). Every blow acts on the run's namespaces only.
"""

from __future__ import annotations

import asyncio
import itertools
import subprocess
import time
import uuid
from pathlib import Path

import asyncpg

from devtools.launcher import Layout
from realdapr.cluster import launch
from realdapr.cluster.database import SUPERUSER
from realdapr.cluster.state import Cluster

from .schedule import APPROVAL_TIMEOUT_S, APPS, STALL_AFTER_S
from .system import RETRY_ENV, ChaosSetupError, set_stock

PREFIX = "sgx"  # a chaos run's namespaces and links, apart from a user's cluster (sgc) and the tests' (sgt)
SUBNET = "10.215.0.0/24"


class ClusterSystem:
    """One cluster in ``folder``: start, disrupt, stop. Blocking methods: call them through asyncio.to_thread."""

    engine = "dapr"

    def __init__(self, folder: Path, orders: int) -> None:
        self.folder, self.orders = folder, orders
        self.log_path = folder / "system.log"
        self.token = uuid.uuid4().hex  # sent to daprd's API; the manifests set no token, so daprd asks for none
        self.layout: Layout | None = None
        self.cluster: Cluster | None = None
        self.runner: subprocess.Popen[bytes] | None = None
        self._turn = itertools.count()

    def start(self) -> None:
        env = {
            "FAULTS_ENABLED": "true",
            "FAULTS_ALLOW_REMOTE": "true",
            # The operator's resolve (chaos's way out for a WORKFLOW_FAILED order) answers loopback clients only;
            # through the proxy the order-api sees the bridge's address.
            "OPERATOR_ALLOW_REMOTE": "true",
            "LOG_LEVEL": "WARNING",
            "APPROVAL_TIMEOUT_SECONDS": str(APPROVAL_TIMEOUT_S),
            "STALL_AFTER_SECONDS": str(STALL_AFTER_S),
            **RETRY_ENV,
        }
        data = self.folder / "cluster"
        cmd = launch.command(data, prefix=PREFIX, subnet=SUBNET, env=env, extra=("--log-level", "warn"))
        try:
            self.runner, self.cluster = launch.start(cmd, data, self.log_path)
        except RuntimeError as err:
            raise ChaosSetupError(str(err)) from err
        proxies = self.cluster.proxies
        order_api = next(iter(self.cluster.pods(app="order-api").values()))
        self.layout = Layout(self.folder / "cluster", proxies, {"order-api": order_api["daprd"]})
        asyncio.run(self._set_stock(Path(self.cluster.doc["database"]["pgdata"]), self.cluster.doc["database"]["port"]))

    async def _set_stock(self, pgdata: Path, port: int) -> None:
        """As ``System._set_stock``, through the server's socket (the runner's own way in)."""
        conn = await asyncpg.connect(host=str(pgdata), port=port, user=SUPERUSER, database="inventory")
        await set_stock(conn, self.orders)

    def stop(self) -> None:
        if self.runner is not None:
            launch.stop(self.runner)

    def log_tail(self, lines: int = 60) -> str:
        text = self.log_path.read_text(errors="replace") if self.log_path.exists() else ""
        return "\n".join(text.splitlines()[-lines:])

    # --- disruptions ----------------------------------------------------------------------------------

    def _pod(self, app: str) -> str:
        """One of ``app``'s replicas, in turn."""
        assert self.cluster is not None and app in APPS
        pods = sorted(self.cluster.pods(app=app))
        return pods[next(self._turn) % len(pods)]

    def kill_app(self, app: str) -> str:
        assert self.cluster is not None
        pod = self._pod(app)
        killed = self.cluster.kill_pod_process(pod, daprd=False)
        return f"killed {pod}'s app, pid {', '.join(map(str, killed))}" if killed else f"{pod}: not running then"

    def kill_daprd(self, app: str) -> str:
        assert self.cluster is not None
        pod = self._pod(app)
        killed = self.cluster.kill_pod_process(pod, daprd=True)
        return f"killed {pod}'s daprd, pid {', '.join(map(str, killed))}" if killed else f"{pod}: not running then"

    def kill_control_plane(self, name: str) -> str:
        assert self.cluster is not None
        killed = self.cluster.kill_control_plane(name)
        return f"killed pid {', '.join(map(str, killed))}" if killed else "not running at that moment"

    def kill_runner(self) -> tuple[str, list[str]]:
        raise ChaosSetupError("a cluster run does not SIGKILL its runner (tests/e2e/test_cluster.py does)")

    def restart_postgres(self) -> str:
        assert self.cluster is not None
        t0 = time.monotonic()
        self.cluster.restart_postgres()
        return f"back in {time.monotonic() - t0:.1f} s"

    def crash_node(self, node: str) -> str:
        assert self.cluster is not None
        killed = self.cluster.crash_node(node)
        return f"killed {len(killed)} processes; the runner restarts its pods" if killed else "nothing running there"

    async def pause_node(self, node: str, seconds: float) -> str:
        assert self.cluster is not None
        stopped = await asyncio.to_thread(self.cluster.pause_node, node)
        try:
            await asyncio.sleep(seconds)
        finally:
            await asyncio.to_thread(self.cluster.resume_node, node)
        return f"{len(stopped)} processes stopped for {seconds} s, then continued"

    async def partition_node(self, node: str, seconds: float) -> str:
        assert self.cluster is not None
        await asyncio.to_thread(self.cluster.partition_node, node, True)
        try:
            await asyncio.sleep(seconds)
        finally:
            await asyncio.to_thread(self.cluster.partition_node, node, False)
        return f"cut off for {seconds} s, then its links restored (the runner's placement healer does the rest)"
