"""``python -m bench.engines``: throughput, latency, per-activity overhead and memory of the sidecar
running N workflows of K sequential cross-app activities, side by side with the same workload on
Microsoft's durabletask in-memory test backend and, once ``make dapr`` has built it, on real daprd.

This process only starts, samples and stops others and prints the figures: every engine, worker and
client runs in a process of its own (see ``bench._dapr`` and ``bench._peer``), and it imports
neither SDK, so durabletask's protobuf modules never meet the Dapr SDK's.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import json
import os
import platform
import re
import signal
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import psutil

DEFAULT_WORKFLOWS = 500
DEFAULT_ACTIVITIES = 10
DEFAULT_CONCURRENCY = (1, 50)
OVERHEAD_GOAL_MS = 5.0
SIDECAR = "sidecar (SQLite)"
PEER = "durabletask in-memory"
DAPRD = "daprd 1.18 (PostgreSQL)"
SYSTEMS = {"sidecar": SIDECAR, "peer": PEER, "daprd": DAPRD}
_READY_TIMEOUT = 60.0
_CLIENT_TIMEOUT = 900.0


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        import psutil  # noqa: F401  (the bench extra; checked before anything starts)
    except ImportError:
        print("bench.engines needs psutil and durabletask: pip install -e '.[bench]'", file=sys.stderr)
        return 2
    try:
        peer_version = metadata.version("durabletask")
    except metadata.PackageNotFoundError:
        print("bench.engines needs durabletask 1.12.0: pip install -e '.[bench]'", file=sys.stderr)
        return 2
    systems = [SYSTEMS[name] for name in args.systems]
    if DAPRD in systems:
        from realdapr.binaries import find

        if find() is None:
            print("bench.engines: no real Dapr for --systems daprd: run `make dapr` first", file=sys.stderr)
            return 2
    runs: list[dict[str, Any]] = []
    report = {
        "machine": _machine(),
        "workload": {"workflows": args.workflows, "activities": args.activities, "concurrency": args.concurrency},
        "versions": {"dapr-ext-workflow": metadata.version("dapr-ext-workflow"), "durabletask": peer_version},
        "systems": systems,
        "runs": runs,
    }
    with tempfile.TemporaryDirectory(prefix="bench-engines-") as tmp:
        for concurrency in args.concurrency:
            for name in args.systems:
                system = SYSTEMS[name]
                if not args.json:
                    print(f"running {system}, concurrency {concurrency} ...", file=sys.stderr, flush=True)
                workdir = Path(tmp) / f"{name}-c{concurrency}"
                workdir.mkdir()
                run = _run(system, workdir, args, concurrency)
                runs.append(run)
    if args.json:
        print(json.dumps(report, indent=2))
    else:
        print(_table(report))
    return 0


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m bench.engines", description=__doc__.split("\n\n")[0])
    p.add_argument(
        "--workflows",
        type=_positive,
        default=DEFAULT_WORKFLOWS,
        metavar="N",
        help=f"workflows measured at each concurrency (default {DEFAULT_WORKFLOWS})",
    )
    p.add_argument(
        "--activities",
        type=_positive,
        default=DEFAULT_ACTIVITIES,
        metavar="K",
        help=f"sequential activities per workflow (default {DEFAULT_ACTIVITIES})",
    )
    p.add_argument(
        "--concurrency",
        type=_positive,
        nargs="+",
        default=list(DEFAULT_CONCURRENCY),
        metavar="C",
        help="workflows in flight at once; one run per value (default: %(default)s)",
    )
    p.add_argument(
        "--systems",
        nargs="+",
        choices=list(SYSTEMS),
        default=["sidecar", "peer"],
        help="what to run the load on, side by side: the sidecar, durabletask's in-memory backend (peer) "
        "and real daprd with placement, scheduler and a PostgreSQL state store (needs `make dapr`) "
        "(default: %(default)s)",
    )
    p.add_argument("--json", action="store_true", help="print the report as JSON instead of a table")
    p.add_argument(
        "--profile",
        metavar="DIR",
        help="run the sidecar under cProfile and write DIR/sidecar-c<C>.prof (slows it down)",
    )
    return p


def _positive(text: str) -> int:
    if not text.isdigit() or int(text) < 1:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number >= 1")
    return int(text)


# ---------------------------------------------------------------------------------------- processes


class Child:
    """One child process; its stdout and stderr go to files in the run's folder."""

    def __init__(
        self, name: str, args: list[str], workdir: Path, env: dict[str, str] | None = None, python: bool = True
    ) -> None:
        self.name = name
        self.out = workdir / f"{name}.out"
        self.err = workdir / f"{name}.err"
        with open(self.out, "wb") as out, open(self.err, "wb") as err:
            self.proc = subprocess.Popen(
                [sys.executable, *args] if python else args,
                stdout=out,
                stderr=err,
                stdin=subprocess.DEVNULL,
                env=_environment(env or {}),
            )

    def wait_for(self, pattern: str, in_stderr: bool = False, timeout: float = _READY_TIMEOUT) -> re.Match[str]:
        path = self.err if in_stderr else self.out
        regex = re.compile(pattern, re.MULTILINE)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            found = regex.search(path.read_text(errors="replace"))
            if found:
                return found
            if self.proc.poll() is not None:
                raise RuntimeError(
                    f"{self.name} exited with code {self.proc.returncode} before it was ready:\n{self.tail()}"
                )
            time.sleep(0.05)
        raise RuntimeError(f"{self.name} was not ready within {timeout:.0f} s:\n{self.tail()}")

    def ready(self) -> dict[str, Any]:
        """The JSON line a worker or backend prints once it serves (see ``bench._load.serve_until_stopped``)."""
        line: dict[str, Any] = json.loads(self.wait_for(r'^\{"ready": true.*$').group(0))
        return line

    def stop(self, timeout: float = 10.0) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()

    def tail(self, lines: int = 25) -> str:
        text = self.err.read_text(errors="replace") + self.out.read_text(errors="replace")
        return "\n".join(f"  [{self.name}] {line}" for line in text.splitlines()[-lines:])


def _environment(extra: dict[str, str]) -> dict[str, str]:
    # A DAPR_GRPC_ENDPOINT or DAPR_API_TOKEN of the caller's shell would point the SDK elsewhere.
    env = {k: v for k, v in os.environ.items() if not k.startswith("DAPR_")}
    return {**env, "PYTHONUNBUFFERED": "1", "DAPR_RUNTIME_HOST": "127.0.0.1", **extra}


class Sampler:
    """Samples the RSS of process groups ("engine", "workers", for daprd also "store") every 50 ms; keeps the
    peak of each group's sum."""

    def __init__(self, groups: dict[str, list[int]]) -> None:
        import psutil

        self._groups = {g: [psutil.Process(pid) for pid in pids] for g, pids in groups.items()}
        self.peak = {g: 0 for g in groups}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, daemon=True)
        self._thread.start()

    def _loop(self) -> None:
        while not self._stop.wait(0.05):
            self.sample()

    def sample(self) -> None:
        import psutil

        for group, procs in self._groups.items():
            with contextlib.suppress(psutil.Error):  # a process that is exiting
                self.peak[group] = max(self.peak[group], sum(p.memory_info().rss for p in procs))

    def cpu_seconds(self) -> dict[str, float]:
        return {g: sum(sum(p.cpu_times()[:2]) for p in procs) for g, procs in self._groups.items()}

    def rss(self, group: str) -> int:
        return sum(p.memory_info().rss for p in self._groups[group])

    def stop(self) -> None:
        self.sample()
        self._stop.set()
        self._thread.join()


@dataclass
class Deployment:
    engines: list[Child]  # what serves the workflow API: the sidecar, the peer's backend, or daprd + control plane
    workers: list[Child]
    client: list[str]  # the client's command line, before PREFIX WORKFLOWS CONCURRENCY ACTIVITIES
    client_env: dict[str, str] = field(default_factory=dict)
    state: Path | None = None
    store: Path | None = None  # the data folder of an embedded PostgreSQL this deployment started

    def stop(self) -> None:
        for child in [*self.workers, *reversed(self.engines)]:
            child.stop()
        if self.store is not None:
            from devtools.devdb import stop_embedded

            stop_embedded(self.store)


def _deploy_sidecar(workdir: Path, profile: str | None, concurrency: int) -> Deployment:
    state = workdir / "state.db"
    serve = ["-m", "sidecar", "serve", "--app", "bench-a=0", "--app", "bench-b=0", "--state", str(state)]
    if profile:
        Path(profile).mkdir(parents=True, exist_ok=True)
        serve = ["-m", "cProfile", "-o", str(Path(profile) / f"sidecar-c{concurrency}.prof"), *serve]
    engine = Child("sidecar", serve, workdir)
    deployment = Deployment([engine], [], [], state=state)
    try:
        engine.wait_for(r"ready; ", in_stderr=True)
        ports = dict(re.findall(r"app (\S+): gRPC on [\d.]+:(\d+)", engine.err.read_text()))
        _start_sdk_workers(deployment, workdir, ports)
    except BaseException:
        deployment.stop()
        raise
    return deployment


def _start_sdk_workers(deployment: Deployment, workdir: Path, grpc_ports: dict[str, str]) -> None:
    """The workflow worker (bench-a) and the activity worker (bench-b) on the Dapr SDK, each talking to its
    app's gRPC port; the client schedules on bench-a. Returns once both workers serve."""
    for app_id, role in (("bench-a", "workflow"), ("bench-b", "activity")):
        env = {"APP_ID": app_id, "DAPR_GRPC_PORT": grpc_ports[app_id]}
        deployment.workers.append(Child(app_id, ["-m", "bench._dapr", role], workdir, env))
    for worker in deployment.workers:
        worker.ready()
    deployment.client = ["-m", "bench._dapr", "client"]
    deployment.client_env = {"APP_ID": "bench-a", "DAPR_GRPC_PORT": grpc_ports["bench-a"]}


def _deploy_peer(workdir: Path, concurrency: int) -> Deployment:
    # One backend thread per waiting client and per work-item stream, plus room for completions.
    engine = Child("peer-backend", ["-m", "bench._peer", "backend", str(concurrency + 32)], workdir)
    deployment = Deployment([engine], [], [])
    try:
        port = str(engine.ready()["port"])
        deployment.workers.append(Child("peer-worker", ["-m", "bench._peer", "worker", port], workdir))
        deployment.workers[0].ready()
    except BaseException:
        deployment.stop()
        raise
    deployment.client = ["-m", "bench._peer", "client", port]
    return deployment


def _deploy_daprd(workdir: Path) -> Deployment:
    """placement, scheduler and one daprd per app (the flags `make run-dapr` uses), the actor state store in an
    embedded PostgreSQL of its own, and the same Dapr SDK workers and client as the sidecar's run."""
    import asyncio
    import urllib.request

    from common.db import ensure_database, libpq_url
    from common.embedded_db import start_embedded
    from devtools.ports import free_port
    from realdapr.binaries import find
    from realdapr.commands import control_plane_commands, control_plane_health, daprd_command, daprd_environment
    from realdapr.ports import ControlPlanePorts
    from realdapr.resources import state_store_yaml
    from sidecar.template import AppSpec

    dapr = find()
    assert dapr is not None  # checked before any run starts
    pgdata = workdir / "pg"
    server = start_embedded(pgdata)
    deployment = Deployment([], [], [], store=pgdata)
    try:
        asyncio.run(ensure_database(server, "bench_workflows"))
        resources = workdir / "resources"
        resources.mkdir()
        (resources / "store.yaml").write_text(state_store_yaml(libpq_url(server, "bench_workflows")))
        ports = ControlPlanePorts.from_bases(0, 0)
        env = daprd_environment({})
        for name, command in control_plane_commands(dapr, ports, workdir / "scheduler", "warn").items():
            deployment.engines.append(Child(name, command, workdir, env, python=False))
        grpc_ports = {}
        urls = list(control_plane_health(ports).values())
        for app_id in ("bench-a", "bench-b"):
            grpc_ports[app_id], http = free_port(), free_port()
            app = AppSpec(app_id=app_id, app_dir=workdir, command=("none",))
            command = daprd_command(app, dapr, grpc_ports[app_id], http, resources, None, ports, "warn")
            deployment.engines.append(Child(f"{app_id}-daprd", command, workdir, env, python=False))
            urls.append(f"http://127.0.0.1:{http}/v1.0/healthz")
        deadline = time.monotonic() + _READY_TIMEOUT
        for url in urls:
            while True:
                try:
                    with urllib.request.urlopen(url, timeout=1):
                        break
                except OSError as err:
                    if time.monotonic() > deadline:
                        tails = "\n".join(c.tail() for c in deployment.engines)
                        raise RuntimeError(f"{url} not healthy:\n{tails}") from err
                    time.sleep(0.2)
        _start_sdk_workers(deployment, workdir, {app: str(port) for app, port in grpc_ports.items()})
    except BaseException:
        deployment.stop()
        raise
    return deployment


def _postgres_processes(pgdata: Path) -> list[psutil.Process]:
    """The embedded server's postmaster and its backends (daprd keeps a pool of connections open)."""
    import psutil

    pid = int((pgdata / "postmaster.pid").read_text().split()[0])
    root = psutil.Process(pid)
    return [root, *root.children(recursive=True)]


def _client(
    deployment: Deployment, workdir: Path, prefix: str, workflows: int, concurrency: int, activities: int
) -> dict[str, Any]:
    cmd = [sys.executable, *deployment.client, prefix, str(workflows), str(concurrency), str(activities)]
    env = _environment(deployment.client_env)
    with open(workdir / f"client-{prefix}.err", "wb") as err:
        done = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=err, env=env, timeout=_CLIENT_TIMEOUT)
    if done.returncode != 0:
        tails = "\n".join(c.tail() for c in [*deployment.engines, *deployment.workers])
        raise RuntimeError(
            f"the {prefix} client failed (exit {done.returncode}):\n"
            f"{(workdir / f'client-{prefix}.err').read_text(errors='replace')[-3000:]}\n{tails}"
        )
    result: dict[str, Any] = json.loads(done.stdout.decode().strip().splitlines()[-1])
    return result


# ---------------------------------------------------------------------------------------- one run


def _run(system: str, workdir: Path, args: argparse.Namespace, concurrency: int) -> dict[str, Any]:
    if system == SIDECAR:
        deployment = _deploy_sidecar(workdir, args.profile, concurrency)
    elif system == DAPRD:
        deployment = _deploy_daprd(workdir)
    else:
        deployment = _deploy_peer(workdir, concurrency)
    groups = {"engine": [c.proc.pid for c in deployment.engines], "workers": [c.proc.pid for c in deployment.workers]}
    if deployment.store is not None:
        groups["store"] = [p.pid for p in _postgres_processes(deployment.store)]
    sampler = Sampler(groups)
    try:
        # Warm-up (not measured): imports, connections, first turns.
        warmup = max(5, min(concurrency, 50))
        _client(deployment, workdir, "warmup", warmup, concurrency, args.activities)
        cpu0, rss0 = sampler.cpu_seconds(), sampler.rss("engine")
        result = _client(deployment, workdir, "measure", args.workflows, concurrency, args.activities)
        cpu1, rss1 = sampler.cpu_seconds(), sampler.rss("engine")
    finally:
        sampler.stop()
        deployment.stop()
    run = _figures(system, concurrency, args.activities, result)
    cpu = {g: cpu1[g] - cpu0[g] for g in cpu0} | {"client": result["cpu_s"]}
    run["cpu_ms_per_workflow"] = {g: round(v * 1000 / args.workflows, 2) for g, v in cpu.items()}
    run["peak_rss_mb"] = {g: round(v / 2**20, 1) for g, v in sampler.peak.items()}
    if "store" in cpu:  # daprd's state lives in PostgreSQL: count it with the engine, as SQLite is in the sidecar's
        run["cpu_ms_per_workflow"]["engine"] = round((cpu["engine"] + cpu["store"]) * 1000 / args.workflows, 2)
        run["peak_rss_mb"]["engine"] = round(run["peak_rss_mb"]["engine"] + run["peak_rss_mb"]["store"], 1)
    # Both engines keep finished instances in memory; this is what one more costs.
    run["engine_rss_growth_kb_per_workflow"] = round((rss1 - rss0) / 1024 / args.workflows, 1)
    run["workers"] = len(deployment.workers)
    if deployment.state is not None:
        run["persisted"] = _persisted(deployment.state, warmup + args.workflows, args.activities)
    return run


def _figures(system: str, concurrency: int, activities: int, result: dict[str, Any]) -> dict[str, Any]:
    lat = sorted(result["latencies_s"])
    # Per workflow: (its latency - its activities' own run time) / K; the own time is measured
    # inside each activity and summed by the workflow.
    overhead = sorted(
        (t - own) / activities for t, own in zip(result["latencies_s"], result["activity_own_s"], strict=True)
    )
    own_per_activity = statistics.fmean(result["activity_own_s"]) / activities
    return {
        "system": system,
        "concurrency": concurrency,
        "workflows": len(lat),
        "wall_s": round(result["wall_s"], 3),
        "workflows_per_s": round(len(lat) / result["wall_s"], 2),
        "activities_per_s": round(len(lat) * activities / result["wall_s"], 1),
        "latency_ms": {
            "p50": _ms(_pct(lat, 50)),
            "p99": _ms(_pct(lat, 99)),
            "mean": _ms(statistics.fmean(lat)),
            "max": _ms(lat[-1]),
        },
        "activity_own_us": round(own_per_activity * 1e6, 2),
        "overhead_per_activity_ms": {"p50": _ms(_pct(overhead, 50)), "mean": _ms(statistics.fmean(overhead))},
    }


def _pct(ordered: list[float], p: int) -> float:
    """The p-th percentile by the nearest-rank method."""
    rank = max(1, -(-p * len(ordered) // 100))
    return ordered[rank - 1]


def _ms(seconds: float) -> float:
    return round(seconds * 1000, 2)


def _persisted(state: Path, expected: int, activities: int) -> dict[str, Any]:
    """Read the stopped sidecar's state file back: every workflow must be there, completed."""
    db = sqlite3.connect(f"file:{state}?mode=ro", uri=True)
    try:
        completed = db.execute("SELECT count(*) FROM instances WHERE completed = 1").fetchone()[0]
        history = db.execute("SELECT count(*) FROM history").fetchone()[0]
    finally:
        db.close()
    if completed != expected:
        raise RuntimeError(f"the state file holds {completed} completed workflows, expected {expected}")
    size = sum(p.stat().st_size for p in state.parent.glob(state.name + "*"))
    return {"completed_instances": completed, "history_events": history, "file_mb": round(size / 2**20, 1)}


# ---------------------------------------------------------------------------------------- report


def _machine() -> dict[str, Any]:
    cpu = "unknown"
    with contextlib.suppress(OSError, StopIteration):
        cpu = next(
            line.split(":", 1)[1].strip()
            for line in Path("/proc/cpuinfo").read_text().splitlines()
            if line.startswith("model name")
        )
    import psutil

    return {
        "nproc": os.cpu_count(),
        "cpu": cpu,
        "ram_gb": round(psutil.virtual_memory().total / 2**30, 1),
        "python": platform.python_version(),
        "os": platform.platform(terse=True),
        "date": dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "loadavg_at_start": [round(x, 2) for x in os.getloadavg()],
    }


def _table(report: dict[str, Any]) -> str:
    m, w = report["machine"], report["workload"]
    out = [
        f"bench.engines: {w['workflows']} workflows x {w['activities']} sequential activities, "
        f"concurrency {', '.join(map(str, w['concurrency']))}",
        f"machine: {m['nproc']} CPUs ({m['cpu']}), {m['ram_gb']} GB RAM, Python {m['python']}, {m['date']}, "
        f"load average at start {m['loadavg_at_start'][0]}",
        f"versions: dapr-ext-workflow {report['versions']['dapr-ext-workflow']}, "
        f"durabletask {report['versions']['durabletask']}",
        "",
    ]
    width = 34
    systems = report["systems"]
    for c in w["concurrency"]:
        runs = {r["system"]: r for r in report["runs"] if r["concurrency"] == c}
        out.append(f"{'concurrency ' + str(c):<{width}}" + "".join(f"{name:>26}" for name in systems))
        rows = [
            ("workflows/s", "workflows_per_s", None),
            ("activities/s", "activities_per_s", None),
            ("latency p50 (ms)", "latency_ms", "p50"),
            ("latency p99 (ms)", "latency_ms", "p99"),
            ("latency max (ms)", "latency_ms", "max"),
        ]
        if c == 1:
            rows += [
                ("overhead/activity p50 (ms)", "overhead_per_activity_ms", "p50"),
                ("overhead/activity mean (ms)", "overhead_per_activity_ms", "mean"),
                ("activity own run time (us)", "activity_own_us", None),
            ]
        rows += [
            ("peak RSS engine (MB)", "peak_rss_mb", "engine"),
            ("peak RSS workers (MB)", "peak_rss_mb", "workers"),
            ("engine CPU per workflow (ms)", "cpu_ms_per_workflow", "engine"),
            ("workers CPU per workflow (ms)", "cpu_ms_per_workflow", "workers"),
            ("client CPU per workflow (ms)", "cpu_ms_per_workflow", "client"),
            ("engine RSS growth/workflow (KB)", "engine_rss_growth_kb_per_workflow", None),
        ]
        for label, key, sub in rows:
            cells = [runs[name][key] if sub is None else runs[name][key][sub] for name in systems]
            out.append(f"  {label:<{width - 2}}" + "".join(f"{v:>26}" for v in cells))
        out.append("")
    out += _verdict(report)
    out += [
        "",
        "notes:",
        f"  - {SIDECAR}: one `python -m sidecar serve` process for apps bench-a and bench-b, every transition",
        "    committed to its SQLite state file (WAL) before it is acknowledged; the workflow runs in a bench-a",
        "    worker process, its activities in a bench-b worker process (cross-app calls), all on the Dapr SDK.",
        f"  - {PEER}: durabletask.testing's backend in its own process, state in memory only. It has no",
        "    multi-app routing, so the workflow and its activities run in-process on its one worker process.",
        "  - latency: schedule -> completion observed by the client, which runs in a process of its own.",
        "    overhead/activity = (latency - K x the activity's own run time) / K, per workflow.",
        "  - workers RSS is the sum over the system's worker processes (2 for the sidecar, 1 for the peer).",
    ]
    if DAPRD in systems:
        out += [
            f"  - {DAPRD}: placement, scheduler and one daprd per app (bench-a, bench-b) as `make run-dapr` starts",
            "    them, the actor state store in an embedded PostgreSQL of its own; the same workers and client as",
            "    the sidecar's. Its engine CPU and RSS include placement, the scheduler and PostgreSQL (the server",
            "    and the backends open when the run started).",
        ]
    for r in report["runs"]:
        if "persisted" in r:
            d = r["persisted"]
            out.append(
                f"  - persisted at concurrency {r['concurrency']}: {d['completed_instances']} completed instances, "
                f"{d['history_events']} history events, state file {d['file_mb']} MB (read back after stop)"
            )
    return "\n".join(out)


def _verdict(report: dict[str, Any]) -> list[str]:
    if SIDECAR not in report["systems"]:
        return []
    out = ["goals (from the issue):"]
    for c in report["workload"]["concurrency"]:
        runs = {r["system"]: r for r in report["runs"] if r["concurrency"] == c}
        s = runs[SIDECAR]["workflows_per_s"]
        for other in (PEER, DAPRD):
            if other in runs:
                o = runs[other]["workflows_per_s"]
                out.append(
                    f"  sidecar throughput >= {other} at concurrency {c}: {'yes' if s >= o else 'NO'} "
                    f"({s} vs {o} workflows/s, x{s / o:.2f})"
                )
    if 1 in report["workload"]["concurrency"]:
        one = next(r for r in report["runs"] if r["system"] == SIDECAR and r["concurrency"] == 1)
        o = one["overhead_per_activity_ms"]["p50"]
        out.append(
            f"  engine overhead per activity < {OVERHEAD_GOAL_MS:g} ms at concurrency 1: "
            f"{'yes' if o < OVERHEAD_GOAL_MS else 'NO'} ({o} ms, p50)"
        )
    return out


if __name__ == "__main__":
    raise SystemExit(main())
