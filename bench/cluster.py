"""``python -m bench.system --topology cluster``: the same load as ``bench.system`` on the 2-node cluster
(``realdapr.cluster``: every app twice, each with its own daprd, across network namespaces, PostgreSQL on a host
of its own), in one run beside the engine-free saga and the single-host system on the sidecar and on real daprd
(on this run's own PostgreSQL). The orders go through the cluster's loopback proxy for the order-api, which
spreads connections over both replicas.

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
    """The baseline, the single-host system on the sidecar and on real daprd (as ``bench.system`` runs them, on the
    same PostgreSQL), then the cluster, one after the other in one run; the report ``table`` prints."""
    from common.db import async_url, ensure_database
    from common.embedded_db import start_embedded
    from devtools.devdb import stop_embedded

    from . import system

    reason = launch.why_not_here()
    if reason:
        raise SystemExit(f"bench.system --topology cluster: {reason}")
    started = machine(load_at="start")
    procs = Processes(tmp)
    pgdata = tmp / "pg"
    server = await asyncio.to_thread(start_embedded, pgdata)
    measured: dict[str, dict[str, Any]] = {}
    try:
        await ensure_database(server, "baseline")
        baseline_url = await system._start_baseline(procs, async_url(server, "baseline"))
        roots = [psutil.Process(p.pid) for p in procs.started]
        measured["engine-free"] = await system._measure(args, baseline_url, postmaster(pgdata), roots, "base", None)
        procs.stop()
        for engine in ("sidecar", "dapr"):
            folder = tmp / engine
            folder.mkdir()
            url, runner = await system._start_system(procs, folder, server, engine)
            measured[f"{engine}, one host"] = await system._measure(
                args, url, postmaster(pgdata), [runner], engine, rss_of=None
            )
            procs.stop()
    finally:
        procs.stop()
        await asyncio.to_thread(stop_embedded, pgdata)
    cluster_runner, cluster_url, cluster_pg = await asyncio.to_thread(_start, tmp)
    try:
        measured["dapr, 2-node cluster"] = await _measure(args, cluster_url, cluster_runner, cluster_pg)
    finally:
        await asyncio.to_thread(launch.stop, cluster_runner)
    return {
        "machine": {**machine(load_at="end"), **started},  # the date is the start's
        "workload": {"latency_orders": args.latency_orders, "orders": args.orders, "concurrency": args.concurrency},
        "systems": measured,
        "all_completed": not any(m["failures"] for m in measured.values()),
    }


def table(report: dict[str, Any]) -> str:
    """The report: a column per system, a row per figure, then each system's CPU per order by process."""
    m, w, systems = report["machine"], report["workload"], report["systems"]
    rows: list[tuple[str, str | None, str]] = [
        ("c=1 latency p50 (ms)", "c1", "p50_ms"),
        ("c=1 latency p99 (ms)", "c1", "p99_ms"),
        (f"c={w['concurrency']} throughput (orders/s)", "cN", "orders_per_s"),
        (f"c={w['concurrency']} latency p50 (ms)", "cN", "p50_ms"),
        (f"c={w['concurrency']} latency p99 (ms)", "cN", "p99_ms"),
        ("CPU per order, all processes (ms)", None, "cpu_ms_per_order_total"),
    ]
    out = [
        "bench.system --topology cluster: one run, one system after the other",
        f"machine: {m['nproc']} CPUs, {m['ram_gb']} GB RAM, Python {m['python']}, {m['date']}; load average "
        f"{m['loadavg_at_start']} at the start, {m['loadavg_at_end']} at the end; {w['latency_orders']} orders at "
        f"c=1, {w['orders']} at c={w['concurrency']}",
        "",
        f"{'':<38}" + "".join(f"{name:>24}" for name in systems),
    ]
    for label, section, key in rows:
        values = [(r[section] if section else r)[key] for r in systems.values()]
        out.append(f"{label:<38}" + "".join(f"{v!s:>24}" for v in values))
    out += ["", f"CPU per order by process (ms, at c={w['concurrency']}):"]
    for name, r in systems.items():
        parts = sorted(r["cpu_ms_per_order"].items(), key=lambda kv: -kv[1])
        out.append(f"  {name}: " + ", ".join(f"{k} {v}" for k, v in parts))
    out.append(f"every order COMPLETED: {'yes' if report['all_completed'] else 'NO'}")
    return "\n".join(out)


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
