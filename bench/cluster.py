"""``python -m bench.system --topology cluster``: the same load as ``bench.system`` on the 2-node cluster
(``realdapr.cluster``: every app twice, each with its own daprd, across network namespaces, PostgreSQL on a host
of its own), side by side with the engine-free saga on this run's own PostgreSQL. The orders go through the
cluster's loopback proxy for the order-api, which spreads connections over both replicas.

CPU per order is counted for every process of the cluster: each app (both replicas together), daprd (all ten),
placement, the scheduler, sentry, PostgreSQL, and the runner itself (it is the proxy every order passes through,
and the watchdog). Not a timed test: every order must end COMPLETED or the run fails.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import subprocess
from pathlib import Path
from typing import Any

import asyncpg
import psutil

from realdapr.cluster import launch
from realdapr.cluster.database import SUPERUSER

from .processes import Processes
from .report import machine
from .sampling import cpu_seconds, postmaster, tree

PREFIX = "sgb"  # apart from a user's cluster (sgc), the tests' (sgt) and chaos's (sgx)
SUBNET = "10.216.0.0/24"


async def run(args: argparse.Namespace, tmp: Path) -> dict[str, Any]:
    """The baseline, then the cluster; the report ``bench.report.system_table`` prints."""
    from common.db import async_url, ensure_database
    from common.embedded_db import start_embedded
    from devtools.devdb import stop_embedded

    from . import system

    reason = launch.why_not_here()
    if reason:
        raise SystemExit(f"bench.system --topology cluster: {reason}")
    procs = Processes(tmp)
    pgdata = tmp / "pg"
    server = await asyncio.to_thread(start_embedded, pgdata)
    try:
        await ensure_database(server, "baseline")
        baseline_url = await system._start_baseline(procs, async_url(server, "baseline"))
        roots = [psutil.Process(p.pid) for p in procs.started]
        baseline = await system._measure(args, baseline_url, postmaster(pgdata), roots, "baseline", rss_of=None)
        procs.stop()
    finally:
        procs.stop()
        await asyncio.to_thread(stop_embedded, pgdata)
    runner, url, cluster_pg = await asyncio.to_thread(_start, tmp)
    try:
        measured = await _measure(args, url, runner, cluster_pg)
    finally:
        await asyncio.to_thread(launch.stop, runner)
    return {
        "machine": machine(load_at="end"),
        "engine": "dapr, 2-node cluster (realdapr.cluster)",
        "workload": {"latency_orders": args.latency_orders, "orders": args.orders, "concurrency": args.concurrency},
        "baseline": baseline,
        "system": measured,
        "all_completed": not baseline["failures"] and not measured["failures"],
    }


def _start(tmp: Path) -> tuple[subprocess.Popen[bytes], str, Path]:
    env = {"FAULTS_ENABLED": "false", "LOG_LEVEL": "WARNING"}
    data = tmp / "cluster"
    cmd = launch.command(data, prefix=PREFIX, subnet=SUBNET, env=env, extra=("--log-level", "warn"))
    runner, cluster = launch.start(cmd, data, tmp / "cluster.log")
    db = cluster.doc["database"]
    asyncio.run(_endless_stock(Path(db["pgdata"]), int(db["port"])))
    return runner, cluster.proxies["order-api"], Path(db["pgdata"])


async def _endless_stock(pgdata: Path, port: int) -> None:
    conn = await asyncpg.connect(host=str(pgdata), port=port, user=SUPERUSER, database="inventory")
    try:
        await conn.execute("UPDATE products SET available = 1000000000")
    finally:
        await conn.close()


def _name(proc: psutil.Process, runner_pid: int) -> str | None:
    from .system import _name_of

    if proc.pid == runner_pid:
        return "cluster runner (proxy, watchdog)"
    name = _name_of(proc)
    if name is None:
        try:
            cmd = proc.cmdline()
        except psutil.Error:
            return None
        if cmd and os.path.basename(cmd[0]) == "sentry":
            return "sentry"
    return name


async def _measure(args: argparse.Namespace, url: str, runner: subprocess.Popen[bytes], pgdata: Path) -> dict[str, Any]:
    from .system import _drive

    root = psutil.Process(runner.pid)
    postgres = postmaster(pgdata)

    def groups() -> dict[str, list[psutil.Process]]:
        found: dict[str, list[psutil.Process]] = {"postgres": tree(postgres)}
        for proc in tree(root):
            name = _name(proc, runner.pid)
            if name is not None:
                found.setdefault(name, []).append(proc)
        return found

    warmup = await _drive(url, 20, 4, "cluster-warmup")
    one = await _drive(url, args.latency_orders, 1, "cluster-c1")
    before = cpu_seconds(groups())
    many = await _drive(url, args.orders, args.concurrency, f"cluster-c{args.concurrency}")
    after = cpu_seconds(groups())
    cpu_ms = {name: round((after[name] - before.get(name, 0.0)) * 1000 / args.orders, 2) for name in after}
    failures = warmup["failures"] + one["failures"] + many["failures"]
    return {
        "c1": one,
        "cN": many,
        "cpu_ms_per_order": cpu_ms,
        "cpu_ms_per_order_total": round(sum(cpu_ms.values()), 2),
        "engine_rss_mb_after_orders": {},
        "orders_run": warmup["orders"] + one["orders"] + many["orders"],
        "failures": failures[:20],
        "failure_count": len(failures),
    }
