"""``python -m bench.system`` (``make bench-system``): the whole system under load, side by side with an
engine-free saga of the same shape (``bench._baseline``) measured in the same run on the same PostgreSQL.

It starts its own embedded PostgreSQL, then the system as ``make run`` starts it (``--engine sidecar``: the
sidecar runner; ``--engine dapr``: real placement, scheduler and daprd, as ``make run-dapr``; ``--engine both``: the
sidecar, then real Dapr, one after the other in the same run), on free ports with faults off, and sends orders to
``POST /orders?wait=true``. Printed side by side, with ratios: latency p50/p99 at concurrency 1; throughput and
p50/p99 at a higher concurrency; CPU milliseconds per order of each process; the engine's RSS after a number of
orders. Every order must end COMPLETED, or the run fails. Never a timed test.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import signal
import sys
import tempfile
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import psutil

from devtools import health, launcher
from devtools.launcher import ENGINES
from devtools.options import add_load_options, positive_int
from devtools.ports import LOOPBACK, free_port

from .processes import Processes
from .report import machine, system_table
from .sampling import cpu_seconds, postmaster, rss_bytes, tree
from .stats import latency_ms

SKUS = ("SKU-MUG", "SKU-TEE", "SKU-CAP", "SKU-NOTEBOOK")
HEALTH_TIMEOUT = 120.0
# The process the report calls the engine, on each engine: its RSS is reported.
ENGINE_PROCESS = {"sidecar": "sidecar", "dapr": "daprd"}


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    # A SIGTERM stops the run as Ctrl-C does: the processes it started and its PostgreSQL are stopped too.
    signal.signal(signal.SIGTERM, _interrupt)
    if args.engine in ("dapr", "both"):
        from realdapr.binaries import find

        if find() is None:
            print("bench.system --engine dapr: no real Dapr: run `make dapr` first", file=sys.stderr)
            return 2
    with tempfile.TemporaryDirectory(prefix="bench-system-") as tmp:
        if args.topology == "cluster":  # bench/cluster.py: also the 2-node cluster of realdapr.cluster (root)
            from . import cluster

            report = asyncio.run(cluster.run(args, Path(tmp)))
            print(json.dumps(report, indent=2) if args.json else cluster.table(report))
            return 0 if report["all_completed"] else 1
        report = asyncio.run(_run(args, Path(tmp)))
    print(json.dumps(report, indent=2) if args.json else system_table(report))
    return 0 if report["all_completed"] else 1


def _interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m bench.system", description=__doc__.split("\n\n")[0])
    p.add_argument(
        "--engine",
        choices=(*ENGINES, "both"),
        default="sidecar",
        help="the workflow engine under the system: the sidecar (default), real daprd (needs `make dapr`), or "
        "both, one after the other beside the same engine-free baseline",
    )
    p.add_argument(
        "--latency-orders", type=positive_int, default=200, metavar="N", help="orders sent one at a time (200)"
    )
    add_load_options(p, "orders sent at --concurrency for throughput and CPU")
    p.add_argument(
        "--rss-at",
        type=positive_int,
        nargs="*",
        default=[1000, 20000],
        metavar="N",
        help="report the engine's RSS once this many orders have run in all (1000 20000); more orders "
        "are sent at --concurrency to get there",
    )
    p.add_argument("--json", action="store_true", help="print the report as JSON")
    p.add_argument(
        "--topology",
        choices=("single", "cluster"),
        default="single",
        help="cluster: real Dapr on the "
        "2-node cluster of `make run-cluster` (needs root, `make dapr`, `make k8s-tools`; no RSS figures)",
    )
    return p


# --- load ---------------------------------------------------------------------------------------------------


def _order(order_id: str, i: int) -> dict[str, Any]:
    return {
        "order_id": order_id,
        "customer_id": f"bench-{i % 97}",
        "email": "bench@example.com",
        "items": [{"sku": SKUS[i % len(SKUS)], "quantity": 1}],
        "payment": {"method": "card", "token": "tok_visa"},
        "shipping_address": {
            "name": "Ada",
            "line1": "1 Main St",
            "city": "London",
            "postal_code": "N1",
            "country": "GB",
        },
    }


async def _drive(url: str, count: int, concurrency: int, prefix: str) -> dict[str, Any]:
    """``count`` orders, at most ``concurrency`` in flight; latency of each, wall time, and how many failed."""
    latencies: list[float] = []
    failures: list[str] = []
    indexes = iter(range(count))
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    async with httpx.AsyncClient(base_url=url, timeout=120, limits=limits) as client:

        async def lane() -> None:
            for i in indexes:
                order_id = f"{prefix}-{i}-{uuid.uuid4().hex[:6]}"
                t0 = time.perf_counter()
                response = await client.post("/orders?wait=true", json=_order(order_id, i))
                latencies.append(time.perf_counter() - t0)
                if not _completed(response):
                    failures.append(f"{order_id}: {response.status_code} {response.text[:200]}")

        t0 = time.perf_counter()
        await asyncio.gather(*(lane() for _ in range(min(concurrency, count))))
        wall = time.perf_counter() - t0
    latency = latency_ms(latencies)
    return {
        "orders": count,
        "wall_s": round(wall, 3),
        "orders_per_s": round(count / wall, 1),
        "p50_ms": latency["p50"],
        "p99_ms": latency["p99"],
        "mean_ms": latency["mean"],
        "failures": failures,
    }


def _name_of(proc: psutil.Process) -> str | None:
    """What the report calls ``proc``: an app, the engine's process, or a part of the baseline; None for the rest
    (a runner, a shell)."""
    try:
        cmd = proc.cmdline()
    except psutil.Error:
        return None
    text = " ".join(cmd)
    for module, app in (
        ("orchestrator", "order-api"),
        ("inventory", "inventory"),
        ("payment", "payment"),
        ("shipping", "shipping"),
        ("notification", "notification"),
    ):
        if f"-m {module}" in text:
            return app
    if "-m sidecar run" in text:
        return "sidecar"
    for binary in ("daprd", "placement", "scheduler"):
        if cmd and os.path.basename(cmd[0]) == binary:
            return binary
    if "bench._baseline" in text:
        return "baseline " + (cmd[cmd.index("bench._baseline") + 2] if "service" in cmd else "orchestrator")
    return None


def _named_below(root: psutil.Process, name: str) -> Callable[[], list[psutil.Process]]:
    """The processes below ``root`` that the report calls ``name``, found anew at each call."""
    return lambda: [p for p in tree(root) if _name_of(p) == name]


# --- one run ------------------------------------------------------------------------------------------------


async def _run(args: argparse.Namespace, tmp: Path) -> dict[str, Any]:
    from common.db import async_url, ensure_database
    from common.embedded_db import start_embedded
    from devtools.devdb import stop_embedded

    load_at_start = [round(x, 2) for x in os.getloadavg()]
    procs = Processes(tmp)
    pgdata = tmp / "pg"
    server = await asyncio.to_thread(start_embedded, pgdata)
    postgres = postmaster(pgdata)
    try:
        # The engine-free saga first, on its own database of the same server.
        await ensure_database(server, "baseline")
        baseline_url = await _start_baseline(procs, async_url(server, "baseline"))
        roots = [psutil.Process(p.pid) for p in procs.started]
        baseline = await _measure(args, baseline_url, postgres, roots, "baseline", rss_of=None)
        procs.stop()

        # The system, as make run / make run-dapr start it: on each engine in turn, on the same PostgreSQL (the
        # second engine's apps find the first one's orders in their tables).
        systems: dict[str, dict[str, Any]] = {}
        for engine in ENGINES if args.engine == "both" else (args.engine,):
            folder = tmp / engine
            folder.mkdir()
            system_url, runner = await _start_system(procs, folder, server, engine)
            systems[engine] = await _measure(
                args,
                system_url,
                postgres,
                [runner],
                "system",
                rss_of=_named_below(runner, ENGINE_PROCESS[engine]),
            )
            procs.stop()
    finally:
        procs.stop()
        await asyncio.to_thread(stop_embedded, pgdata)
    return {
        "machine": {**machine(load_at="end"), "loadavg_at_start": load_at_start},
        "engine": args.engine,
        "workload": {"latency_orders": args.latency_orders, "orders": args.orders, "concurrency": args.concurrency},
        "baseline": baseline,
        "systems": systems,
        "all_completed": not baseline["failures"] and not any(s["failures"] for s in systems.values()),
    }


async def _start_baseline(procs: Processes, database_url: str) -> str:
    """The engine-free saga's four services and orchestrator on ``database_url``; its URL once all answer."""
    from . import _baseline

    await _baseline.create_tables(database_url)
    service_ports = {name: free_port() for name in _baseline.STEPS}
    for name, port in service_ports.items():
        procs.start(
            f"baseline-{name}", [sys.executable, "-m", "bench._baseline", "service", name, str(port), database_url]
        )
    orchestrator_port = free_port()
    service_urls = [f"http://{LOOPBACK}:{port}" for port in service_ports.values()]
    procs.start(
        "baseline-orchestrator",
        [sys.executable, "-m", "bench._baseline", "orchestrator", str(orchestrator_port), database_url, *service_urls],
    )
    url = f"http://{LOOPBACK}:{orchestrator_port}"
    urls = {f"baseline {name}": f"{u}/healthz" for name, u in zip(service_ports, service_urls, strict=True)}
    await health.wait_healthy_async(
        {**urls, "baseline orchestrator": f"{url}/healthz"}, HEALTH_TIMEOUT, "the engine-free saga", context=procs.tails
    )
    return url


async def _start_system(procs: Processes, tmp: Path, server: str, engine: str) -> tuple[str, psutil.Process]:
    """The system on ``engine`` with faults off, its apps' databases on ``server``; the order-api's URL and the
    runner's process once every app and its engine answer."""
    from common.db import libpq_url

    layout = launcher.write_template(tmp, {"FAULTS_ENABLED": "false", "POSTGRES_URL": server, "LOG_LEVEL": "WARNING"})
    extra = ("--log-level", "warn") if engine == "dapr" else ()
    env = {**os.environ, "PYTHONUNBUFFERED": "1", "POSTGRES_URL": server}
    runner = procs.start("system", launcher.runner_command(engine, tmp, layout.template, *extra), env)
    await asyncio.to_thread(launcher.wait_healthy, layout, runner.running, runner.tail, HEALTH_TIMEOUT)
    await _endless_stock(libpq_url(server, "inventory"))
    return layout.urls["order-api"], psutil.Process(runner.pid)


async def _endless_stock(inventory_url: str) -> None:
    """The catalog's stock is for demos; the load must not run out of it (every order must complete)."""
    import asyncpg

    conn = await asyncpg.connect(inventory_url)
    try:
        await conn.execute("UPDATE products SET available = 1000000000")
    finally:
        await conn.close()


def _completed(response: httpx.Response) -> bool:
    """A synchronous order submission (``?wait=true``, or the baseline's) that ended COMPLETED."""
    return response.status_code == 200 and response.json().get("status") == "COMPLETED"


async def _measure(
    args: argparse.Namespace,
    url: str,
    postgres: psutil.Process,
    roots: list[psutil.Process],
    prefix: str,
    rss_of: Callable[[], list[psutil.Process]] | None,
) -> dict[str, Any]:
    """The load against ``url``: a warm-up, ``--latency-orders`` one at a time, ``--orders`` at
    ``--concurrency`` (with the CPU time of PostgreSQL and of every named process below ``roots``), then, with
    ``rss_of``, its RSS after each ``--rss-at`` orders in all."""

    def groups() -> dict[str, list[psutil.Process]]:
        """Found anew at each reading, so that processes started later (PostgreSQL backends) count from then on."""
        found: dict[str, list[psutil.Process]] = {"postgres": tree(postgres)}
        for proc in [p for root in roots for p in tree(root)]:
            name = _name_of(proc)
            if name is not None:
                found.setdefault(name, []).append(proc)
        return found

    warmup = await _drive(url, 20, 4, f"{prefix}-warmup")
    one = await _drive(url, args.latency_orders, 1, f"{prefix}-c1")
    before = cpu_seconds(groups())
    many = await _drive(url, args.orders, args.concurrency, f"{prefix}-c{args.concurrency}")
    after = cpu_seconds(groups())
    done = warmup["orders"] + one["orders"] + many["orders"]
    cpu_ms = {name: round((after[name] - before.get(name, 0.0)) * 1000 / args.orders, 2) for name in after}
    rss: dict[str, float] = {}
    failures = warmup["failures"] + one["failures"] + many["failures"]
    if rss_of is not None:
        for target in sorted(args.rss_at):
            if target > done:
                extra = await _drive(url, target - done, args.concurrency, f"{prefix}-fill{target}")
                failures += extra["failures"]
                done = target
            rss[str(target)] = round(rss_bytes(rss_of()) / 2**20, 1)
    return {
        "c1": one,
        "cN": many,
        "cpu_ms_per_order": cpu_ms,
        "cpu_ms_per_order_total": round(sum(cpu_ms.values()), 2),
        "engine_rss_mb_after_orders": rss,
        "orders_run": done,
        "failures": failures[:20],
        "failure_count": len(failures),
    }


if __name__ == "__main__":
    raise SystemExit(main())
