"""``python -m bench.system`` (``make bench-system``): the whole system under load, side by side with an
engine-free saga of the same shape (``bench._baseline``) measured in the same run on the same PostgreSQL.

It starts its own embedded PostgreSQL, then the system as ``make run`` starts it (``--engine sidecar``: the
sidecar runner; ``--engine dapr``: real placement, scheduler and daprd, as ``make run-dapr``), on free ports with
faults off, and sends orders to ``POST /orders?wait=true``. Printed side by side, with ratios: latency p50/p99 at
concurrency 1; throughput and p50/p99 at a higher concurrency; CPU milliseconds per order of each process; the
engine's RSS after a number of orders. Every order must end COMPLETED, or the run fails. Never a timed test.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import json
import os
import platform
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import psutil

from devtools.launcher import runner_command, write_template
from devtools.ports import free_port as _free_port

REPO = Path(__file__).resolve().parents[1]
SKUS = ("SKU-MUG", "SKU-TEE", "SKU-CAP", "SKU-NOTEBOOK")
APPS = ("order-api", "inventory", "payment", "shipping", "notification")


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    # A SIGTERM stops the run as Ctrl-C does: the processes it started and its PostgreSQL are stopped too.
    signal.signal(signal.SIGTERM, _interrupt)
    if args.engine == "dapr":
        from realdapr.binaries import find

        if find() is None:
            print("bench.system --engine dapr: no real Dapr: run `make dapr` first", file=sys.stderr)
            return 2
    with tempfile.TemporaryDirectory(prefix="bench-system-") as tmp:
        report = asyncio.run(_run(args, Path(tmp)))
    print(json.dumps(report, indent=2) if args.json else _table(report))
    return 0 if report["all_completed"] else 1


def _interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m bench.system", description=__doc__.split("\n\n")[0])
    p.add_argument(
        "--engine",
        choices=("sidecar", "dapr"),
        default="sidecar",
        help="the workflow engine under the system: the sidecar, or real daprd (needs `make dapr`)",
    )
    p.add_argument("--latency-orders", type=int, default=200, metavar="N", help="orders sent one at a time (200)")
    p.add_argument(
        "--orders",
        type=int,
        default=1000,
        metavar="N",
        help="orders sent at --concurrency for throughput and CPU (1000)",
    )
    p.add_argument("--concurrency", type=int, default=16, metavar="C", help="orders in flight at once (16)")
    p.add_argument(
        "--rss-at",
        type=int,
        nargs="*",
        default=[1000, 20000],
        metavar="N",
        help="report the engine's RSS once this many orders have run in all (1000 20000); more orders "
        "are sent at --concurrency to get there",
    )
    p.add_argument("--json", action="store_true", help="print the report as JSON")
    return p


# --- processes ----------------------------------------------------------------------------------------------


class Processes:
    """Processes this run started, each in its own session; stopped with SIGTERM, then SIGKILL."""

    def __init__(self, logs: Path) -> None:
        self.logs = logs
        self.started: list[subprocess.Popen[bytes]] = []

    def start(self, name: str, command: list[str], env: dict[str, str] | None = None) -> subprocess.Popen[bytes]:
        log = open(self.logs / f"{name}.log", "wb")  # noqa: SIM115  (closed with the process)
        proc = subprocess.Popen(
            command,
            cwd=REPO,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            env={**os.environ, "PYTHONUNBUFFERED": "1", **(env or {})},
        )
        self.started.append(proc)
        return proc

    def tail(self, name: str, lines: int = 30) -> str:
        path = self.logs / f"{name}.log"
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:]) if path.exists() else ""

    def stop(self) -> None:
        for proc in reversed(self.started):
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
        for proc in reversed(self.started):
            try:
                proc.wait(60)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()


async def _wait_healthy(urls: list[str], what: str, procs: Processes, timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    async with httpx.AsyncClient(timeout=2) as client:
        pending = list(urls)
        while pending:
            if time.monotonic() > deadline:
                raise RuntimeError(f"{what} not healthy after {timeout:.0f} s: {pending}\n{procs.tail(what)}")
            for url in list(pending):
                try:
                    if (await client.get(url)).is_success:
                        pending.remove(url)
                except httpx.HTTPError:
                    pass
            await asyncio.sleep(0.3)


async def _wait_listening(ports: list[int], procs: Processes, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    for port in ports:
        while True:
            try:
                _, writer = await asyncio.open_connection("127.0.0.1", port)
                writer.close()
                break
            except OSError:
                if time.monotonic() > deadline:
                    raise RuntimeError(
                        f"nothing listens on port {port} after {timeout:.0f} s:\n" + procs.tail("baseline-orchestrator")
                    ) from None
                await asyncio.sleep(0.1)


def _system_template(tmp: Path, postgres_url: str) -> tuple[Path, dict[str, int]]:
    layout = write_template(tmp, {"FAULTS_ENABLED": "false", "POSTGRES_URL": postgres_url, "LOG_LEVEL": "WARNING"})
    return layout.template, {app: int(url.rsplit(":", 1)[1]) for app, url in layout.urls.items()}


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


async def _drive(
    url: str, count: int, concurrency: int, prefix: str, completed: Callable[[httpx.Response], bool]
) -> dict[str, Any]:
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
                if not completed(response):
                    failures.append(f"{order_id}: {response.status_code} {response.text[:200]}")

        t0 = time.perf_counter()
        await asyncio.gather(*(lane() for _ in range(min(concurrency, count))))
        wall = time.perf_counter() - t0
    ordered = sorted(latencies)
    return {
        "orders": count,
        "wall_s": round(wall, 3),
        "orders_per_s": round(count / wall, 1),
        "p50_ms": _ms(_pct(ordered, 50)),
        "p99_ms": _ms(_pct(ordered, 99)),
        "mean_ms": _ms(statistics.fmean(ordered)),
        "failures": failures,
    }


def _pct(ordered: list[float], p: int) -> float:
    return ordered[max(1, -(-p * len(ordered) // 100)) - 1]


def _ms(seconds: float) -> float:
    return round(seconds * 1000, 2)


class Cpu:
    """CPU seconds (user + system) of named process groups, found anew at each reading so that processes that
    a group starts later (PostgreSQL backends) count from then on."""

    def __init__(self, groups: Callable[[], dict[str, list[psutil.Process]]]) -> None:
        self.groups = groups
        self._seen: dict[int, float] = {}

    def reading(self) -> dict[str, float]:
        out: dict[str, float] = {}
        for name, procs in self.groups().items():
            total = 0.0
            for proc in procs:
                try:
                    times = proc.cpu_times()
                except psutil.Error:
                    continue
                total += times.user + times.system
            out[name] = total
        return out


def _name_of(proc: psutil.Process) -> str | None:
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


def _tree(root: psutil.Process) -> list[psutil.Process]:
    try:
        return [root, *root.children(recursive=True)]
    except psutil.Error:
        return []


# --- one run ------------------------------------------------------------------------------------------------


async def _run(args: argparse.Namespace, tmp: Path) -> dict[str, Any]:
    from common.db import async_url, ensure_database, libpq_url
    from common.embedded_db import start_embedded
    from devtools.devdb import stop_embedded

    from . import _baseline

    procs = Processes(tmp)
    pgdata = tmp / "pg"
    server = await asyncio.to_thread(start_embedded, pgdata)
    postmaster = psutil.Process(int((pgdata / "postmaster.pid").read_text().split()[0]))
    try:
        # The engine-free saga first, on its own database of the same server.
        await ensure_database(server, "baseline")
        baseline_db = async_url(server, "baseline")
        await _baseline.create_tables(baseline_db)
        service_ports = {name: _free_port() for name in _baseline.STEPS}
        for name, port in service_ports.items():
            procs.start(
                f"baseline-{name}", [sys.executable, "-m", "bench._baseline", "service", name, str(port), baseline_db]
            )
        orchestrator_port = _free_port()
        procs.start(
            "baseline-orchestrator",
            [
                sys.executable,
                "-m",
                "bench._baseline",
                "orchestrator",
                str(orchestrator_port),
                baseline_db,
                *(f"http://127.0.0.1:{p}" for p in service_ports.values()),
            ],
        )
        await _wait_listening([*service_ports.values(), orchestrator_port], procs)
        baseline_url = f"http://127.0.0.1:{orchestrator_port}"
        baseline = await _measure(args, baseline_url, _completed, postmaster, "baseline", rss_of=None)
        procs.stop()
        procs.started.clear()

        # The system, as make run / make run-dapr start it.
        template, ports = _system_template(tmp, server)
        if args.engine == "sidecar":
            runner = procs.start("system", runner_command("sidecar", tmp, template))
        else:
            runner = procs.start(
                "system", runner_command("dapr", tmp, template, "--log-level", "warn"), env={"POSTGRES_URL": server}
            )
        await _wait_healthy([f"http://127.0.0.1:{p}/healthz" for p in ports.values()], "system", procs)
        await _endless_stock(libpq_url(server, "inventory"))
        engine = "sidecar" if args.engine == "sidecar" else "daprd"
        system = await _measure(
            args,
            f"http://127.0.0.1:{ports['order-api']}",
            _completed,
            postmaster,
            "system",
            rss_of=lambda: [p for p in _tree(psutil.Process(runner.pid)) if _name_of(p) == engine],
            root=psutil.Process(runner.pid),
        )
    finally:
        procs.stop()
        await asyncio.to_thread(stop_embedded, pgdata)
    return {
        "machine": _machine(),
        "engine": args.engine,
        "workload": {"latency_orders": args.latency_orders, "orders": args.orders, "concurrency": args.concurrency},
        "baseline": baseline,
        "system": system,
        "all_completed": not baseline["failures"] and not system["failures"],
    }


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
    completed: Callable[[httpx.Response], bool],
    postmaster: psutil.Process,
    prefix: str,
    rss_of: Callable[[], list[psutil.Process]] | None,
    root: psutil.Process | None = None,
) -> dict[str, Any]:
    def groups() -> dict[str, list[psutil.Process]]:
        found: dict[str, list[psutil.Process]] = {"postgres": _tree(postmaster)}
        candidates = _tree(root) if root is not None else [p for p in psutil.process_iter() if _name_of(p)]
        for proc in candidates:
            name = _name_of(proc)
            if name is not None and (root is not None or name.startswith("baseline")):
                found.setdefault(name, []).append(proc)
        return found

    cpu = Cpu(groups)
    warmup = await _drive(url, 20, 4, f"{prefix}-warmup", completed)
    one = await _drive(url, args.latency_orders, 1, f"{prefix}-c1", completed)
    before = cpu.reading()
    many = await _drive(url, args.orders, args.concurrency, f"{prefix}-c{args.concurrency}", completed)
    after = cpu.reading()
    done = warmup["orders"] + one["orders"] + many["orders"]
    cpu_ms = {name: round((after[name] - before.get(name, 0.0)) * 1000 / args.orders, 2) for name in after}
    rss: dict[str, float] = {}
    failures = warmup["failures"] + one["failures"] + many["failures"]
    if rss_of is not None:
        for target in sorted(args.rss_at):
            if target > done:
                extra = await _drive(url, target - done, args.concurrency, f"{prefix}-fill{target}", completed)
                failures += extra["failures"]
                done = target
            rss[str(target)] = round(sum(p.memory_info().rss for p in rss_of()) / 2**20, 1)
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


def _machine() -> dict[str, Any]:
    return {
        "nproc": os.cpu_count(),
        "ram_gb": round(psutil.virtual_memory().total / 2**30, 1),
        "python": platform.python_version(),
        "date": dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "loadavg_at_end": [round(x, 2) for x in os.getloadavg()],
    }


def _table(report: dict[str, Any]) -> str:
    b, s, w, m = report["baseline"], report["system"], report["workload"], report["machine"]

    def ratio(x: float, y: float) -> str:
        return f"x{y / x:.2f}" if x else "-"

    rows = [
        ("c=1 latency p50 (ms)", b["c1"]["p50_ms"], s["c1"]["p50_ms"]),
        ("c=1 latency p99 (ms)", b["c1"]["p99_ms"], s["c1"]["p99_ms"]),
        (f"c={w['concurrency']} throughput (orders/s)", b["cN"]["orders_per_s"], s["cN"]["orders_per_s"]),
        (f"c={w['concurrency']} latency p50 (ms)", b["cN"]["p50_ms"], s["cN"]["p50_ms"]),
        (f"c={w['concurrency']} latency p99 (ms)", b["cN"]["p99_ms"], s["cN"]["p99_ms"]),
        ("CPU per order, all processes (ms)", b["cpu_ms_per_order_total"], s["cpu_ms_per_order_total"]),
    ]
    engine = "sidecar" if report["engine"] == "sidecar" else "real daprd"
    out = [
        f"bench.system: the system on the {engine} vs an engine-free saga, same PostgreSQL, same run",
        f"machine: {m['nproc']} CPUs, {m['ram_gb']} GB RAM, Python {m['python']}, {m['date']}; "
        f"{w['latency_orders']} orders at c=1, {w['orders']} at c={w['concurrency']}",
        "",
        f"{'':<40}{'engine-free':>14}{'system':>14}{'ratio':>10}",
    ]
    out += [f"{label:<40}{x:>14}{y:>14}{ratio(x, y):>10}" for label, x, y in rows]
    out += ["", "CPU per order by process (ms, at c=" + str(w["concurrency"]) + "):"]
    for side, data in (("engine-free", b), ("system", s)):
        parts = ", ".join(f"{k} {v}" for k, v in sorted(data["cpu_ms_per_order"].items(), key=lambda kv: -kv[1]))
        out.append(f"  {side}: {parts}")
    if s["engine_rss_mb_after_orders"]:
        out.append(
            "engine RSS (MB) after N orders: "
            + ", ".join(f"{n}: {mb}" for n, mb in s["engine_rss_mb_after_orders"].items())
        )
    out.append(
        f"every order COMPLETED: {'yes' if report['all_completed'] else 'NO'}"
        + (
            ""
            if report["all_completed"]
            else f" ({b['failure_count']} engine-free, {s['failure_count']} system "
            f"failed; first: {(b['failures'] + s['failures'])[:3]})"
        )
    )
    return "\n".join(out)


if __name__ == "__main__":
    raise SystemExit(main())
