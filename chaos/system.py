"""The system under chaos and the blows it takes: its own embedded PostgreSQL and databases, the runner of either
engine on a rewritten dapr.yaml (``devtools.launcher``), and the disruptions that are not faults: SIGKILL of one app,
SIGKILL of the whole runner and a restart on the same state, an immediate-mode PostgreSQL restart, and on real Dapr
SIGKILL of one app's daprd or of placement, the scheduler or sentry (each restarted by the runner's supervisor).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import subprocess
import time
import uuid
from collections.abc import Callable
from pathlib import Path

import asyncpg
import psutil

from common.db import database_name, ensure_database, libpq_url
from common.embedded_db import start_embedded
from devtools.devdb import restart_embedded, stop_embedded
from devtools.health import NotHealthy
from devtools.launcher import REPO, Layout, runner_command, wait_healthy, write_template
from devtools.processes import stop_runner

from .schedule import APPROVAL_TIMEOUT_S, APPS, LAMP, PLENTIFUL, SCARCE, STALL_AFTER_S

# The saga's retry policy in a chaos run: the production shape with a budget (about 14 s of backoff over 10
# attempts) longer than any one disruption lasts (a PostgreSQL or runner restart takes a few seconds), so a step
# outlives the disruption instead of failing because of it. Injected transient faults stay below 10 attempts.
RETRY_ENV = {
    "SAGA_RETRY_FIRST_INTERVAL_MS": "250",
    "SAGA_RETRY_BACKOFF": "2.0",
    "SAGA_RETRY_MAX_INTERVAL_MS": "2000",
    "SAGA_RETRY_MAX_ATTEMPTS": "10",
}
# PostgreSQL's default of 100 connections is less than the system may hold under load: each app's pools keep up to
# 24 connections per event loop (common/db.py) and an app has two loops, then the five daprd and the scheduler's
# store. A default 1,000-order run on daprd under a heavy machine load (2026-12-07) ran out ("sorry, too many clients
# already", inventory for two minutes) and could not even clear its faults. The run's own server allows more; the
# pools' size is the apps' business (README, Chaos).
MAX_CONNECTIONS = 400
MODULES = {
    "order-api": "orchestrator",
    "inventory": "inventory",
    "payment": "payment",
    "shipping": "shipping",
    "notification": "notification",
}


class ChaosSetupError(RuntimeError):
    """The system could not be started (or restarted): the run stops, nothing left running."""


class System:
    """One system in ``folder``: start, disrupt, stop. Blocking methods: call them through asyncio.to_thread."""

    def __init__(self, engine: str, folder: Path, orders: int) -> None:
        self.engine, self.folder, self.orders = engine, folder, orders
        self.pgdata = folder / "pg"
        self.log_path = folder / "system.log"
        self.token = uuid.uuid4().hex
        self.postgres_url = ""
        self.layout: Layout | None = None
        self.runner: subprocess.Popen[bytes] | None = None

    # --- start and stop -------------------------------------------------------------------------------

    def start(self) -> None:
        self.postgres_url = start_embedded(self.pgdata)
        asyncio.run(self._allow_connections(MAX_CONNECTIONS))
        databases = {app: libpq_url(self.postgres_url, database_name(app)) for app in APPS}
        for app in APPS:
            asyncio.run(ensure_database(self.postgres_url, database_name(app)))
        env = {
            "POSTGRES_URL": self.postgres_url,
            "FAULTS_ENABLED": "true",
            "LOG_LEVEL": "WARNING",
            "APPROVAL_TIMEOUT_SECONDS": str(APPROVAL_TIMEOUT_S),
            "STALL_AFTER_SECONDS": str(STALL_AFTER_S),
            **RETRY_ENV,
        }
        self.layout = write_template(self.folder, env, databases)
        self.start_runner()
        asyncio.run(self._set_stock(databases["inventory"]))

    async def _allow_connections(self, limit: int) -> None:
        """Raise the server's connection limit (then restart it) when it is lower: see MAX_CONNECTIONS."""
        conn = await asyncpg.connect(self.postgres_url)
        try:
            current = int(await conn.fetchval("SHOW max_connections"))
            if current >= limit:
                return
            await conn.execute(f"ALTER SYSTEM SET max_connections = {int(limit)}")
        finally:
            await conn.close()
        await asyncio.to_thread(restart_embedded, self.pgdata, "fast")

    async def _set_stock(self, inventory_url: str) -> None:
        """Enough stock that happy orders are not refused for want of it, but for one scarce SKU they compete for
        (and the demo's three lamps). Set once, before any order: the stock checks start from what GET /products
        says after this."""
        await set_stock(await asyncpg.connect(inventory_url), self.orders)

    def start_runner(self) -> None:
        assert self.layout is not None
        extra = ("--workflow-db", "chaos_workflows", "--log-level", "warn") if self.engine == "dapr" else ()
        with open(self.log_path, "ab") as log:
            self.runner = subprocess.Popen(
                runner_command(self.engine, self.folder, self.layout.template, *extra),
                cwd=REPO,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
                env={
                    **os.environ,
                    "PYTHONUNBUFFERED": "1",
                    "POSTGRES_URL": self.postgres_url,
                    "DAPR_API_TOKEN": self.token,
                },
            )
        runner = self.runner
        try:
            wait_healthy(self.layout, lambda: runner.poll() is None, self.log_tail, timeout=180)
        except NotHealthy as err:
            raise ChaosSetupError(str(err)) from err

    def stop(self) -> None:
        if self.runner is not None:
            stop_runner(self.runner)
        if self.pgdata.exists():
            stop_embedded(self.pgdata)

    def log_tail(self, lines: int = 60) -> str:
        text = self.log_path.read_text(errors="replace") if self.log_path.exists() else ""
        return "\n".join(text.splitlines()[-lines:])

    # --- disruptions ----------------------------------------------------------------------------------

    def kill_app(self, app: str) -> str:
        """SIGKILL one app's process; its runner restarts it. Returns what happened."""
        found = [p for p in self._descendants() if _is_app(p, MODULES[app])]
        for proc in found:
            _kill(proc)
        return f"killed pid {', '.join(str(p.pid) for p in found)}" if found else "not running at that moment"

    def kill_daprd(self, app: str) -> str:
        """SIGKILL ``app``'s daprd; the runner restarts it. Returns what happened."""
        return self._kill_where(lambda p: _name(p) == "daprd" and _flag(p, "--app-id") == app)

    def kill_control_plane(self, name: str) -> str:
        """SIGKILL placement, the scheduler or sentry; the runner restarts it. Returns what happened."""
        return self._kill_where(lambda p: _name(p) == name)

    def _kill_where(self, chosen: Callable[[psutil.Process], bool]) -> str:
        found = [p for p in self._descendants() if chosen(p)]
        for proc in found:
            _kill(proc)
        return f"killed pid {', '.join(str(p.pid) for p in found)}" if found else "not running at that moment"

    def kill_runner(self) -> tuple[str, list[str]]:
        """SIGKILL the runner (the sidecar with it, or the control plane's parent), check that every process it
        had started dies with it, and start it again on the same state. Returns what happened and the processes
        that outlived their runner (each one a violation; they are killed so that the run can go on)."""
        assert self.runner is not None
        before = self._descendants()
        self.runner.kill()
        self.runner.wait()
        _, alive = psutil.wait_procs(before, timeout=20)
        survivors = [p for p in alive if _status(p) not in (psutil.STATUS_ZOMBIE, None)]
        left = [f"pid {p.pid} ({_cmd(p)})" for p in survivors]
        for proc in survivors:
            _kill(proc)
        psutil.wait_procs(survivors, timeout=10)
        t0 = time.monotonic()
        self.start_runner()
        return f"{len(before)} processes died with it; back up in {time.monotonic() - t0:.1f} s", left

    def restart_postgres(self) -> str:
        """``pg_ctl restart -m immediate``: every connection drops, the server recovers from its WAL."""
        t0 = time.monotonic()
        restart_embedded(self.pgdata, "immediate")
        return f"back in {time.monotonic() - t0:.1f} s"

    def _descendants(self) -> list[psutil.Process]:
        if self.runner is None:
            return []
        try:
            return psutil.Process(self.runner.pid).children(recursive=True)
        except psutil.NoSuchProcess:
            return []


def _is_app(proc: psutil.Process, module: str) -> bool:
    try:
        cmd = proc.cmdline()
    except psutil.Error:
        return False
    return cmd[-2:] == ["-m", module]


def _name(proc: psutil.Process) -> str | None:
    try:
        return proc.name()
    except psutil.Error:
        return None


def _flag(proc: psutil.Process, flag: str) -> str | None:
    try:
        cmd = proc.cmdline()
    except psutil.Error:
        return None
    return cmd[cmd.index(flag) + 1] if flag in cmd[:-1] else None


def _kill(proc: psutil.Process) -> None:
    with contextlib.suppress(psutil.Error):
        proc.send_signal(signal.SIGKILL)


def _status(proc: psutil.Process) -> str | None:
    try:
        return proc.status()
    except psutil.Error:
        return None


def _cmd(proc: psutil.Process) -> str:
    try:
        return " ".join(proc.cmdline())[:120]
    except psutil.Error:
        return "?"


async def set_stock(conn: asyncpg.Connection, orders: int) -> None:
    """The stock a run of ``orders`` starts from, written through ``conn`` to the inventory database (which it
    closes): plenty of most SKUs, few of the scarce one, three lamps."""
    try:
        await conn.execute(
            "UPDATE products SET available = $1 WHERE sku = ANY($2::text[])", orders * 4, list(PLENTIFUL)
        )
        await conn.execute("UPDATE products SET available = $1 WHERE sku = $2", max(5, orders // 20), SCARCE)
        await conn.execute("UPDATE products SET available = 3 WHERE sku = $1", LAMP)
    finally:
        await conn.close()
