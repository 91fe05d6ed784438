"""``python -m bench.engines``: throughput, latency, per-activity overhead and memory of the sidecar
running N workflows of K sequential cross-app activities, side by side with the same workload on
Microsoft's durabletask in-memory test backend and, once ``make dapr`` has built it, on real daprd.

This process only starts, samples and stops others and prints the figures: every engine, worker and
client runs in a process of its own (see ``bench.deployments``, ``bench._dapr`` and ``bench._peer``), and it
imports neither SDK, so durabletask's protobuf modules never meet the Dapr SDK's.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
from importlib import metadata
from pathlib import Path
from typing import Any

from devtools.options import positive_int

from .report import DAPRD, SYSTEMS, engines_table, machine
from .stats import latency_ms, ms, percentile

DEFAULT_WORKFLOWS = 500
DEFAULT_ACTIVITIES = 10
DEFAULT_CONCURRENCY = (1, 50)


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
        "machine": machine(load_at="start"),
        "workload": {"workflows": args.workflows, "activities": args.activities, "concurrency": args.concurrency},
        "versions": {"dapr-ext-workflow": metadata.version("dapr-ext-workflow"), "durabletask": peer_version},
        "systems": systems,
        "runs": runs,
    }
    with tempfile.TemporaryDirectory(prefix="bench-engines-") as tmp:
        for concurrency in args.concurrency:
            for name in args.systems:
                if not args.json:
                    print(f"running {SYSTEMS[name]}, concurrency {concurrency} ...", file=sys.stderr, flush=True)
                workdir = Path(tmp) / f"{name}-c{concurrency}"
                workdir.mkdir()
                runs.append(_run(name, workdir, args, concurrency))
    print(json.dumps(report, indent=2) if args.json else engines_table(report))
    return 0


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m bench.engines", description=__doc__.split("\n\n")[0])
    p.add_argument(
        "--workflows",
        type=positive_int,
        default=DEFAULT_WORKFLOWS,
        metavar="N",
        help=f"workflows measured at each concurrency (default {DEFAULT_WORKFLOWS})",
    )
    p.add_argument(
        "--activities",
        type=positive_int,
        default=DEFAULT_ACTIVITIES,
        metavar="K",
        help=f"sequential activities per workflow (default {DEFAULT_ACTIVITIES})",
    )
    p.add_argument(
        "--concurrency",
        type=positive_int,
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


def _run(name: str, workdir: Path, args: argparse.Namespace, concurrency: int) -> dict[str, Any]:
    """One system at one concurrency: deploy it, warm it up, measure the load, stop it; its figures."""
    # psutil, which these need, is there: main() checked.
    import psutil

    from .deployments import deploy_daprd, deploy_peer, deploy_sidecar, persisted, run_client
    from .sampling import PeakRss, cpu_seconds, postmaster, rss_bytes, tree

    if name == "sidecar":
        deployment = deploy_sidecar(workdir, args.profile, concurrency)
    elif name == "daprd":
        deployment = deploy_daprd(workdir)
    else:
        deployment = deploy_peer(workdir, concurrency)
    groups = {
        "engine": [psutil.Process(p.pid) for p in deployment.engines],
        "workers": [psutil.Process(p.pid) for p in deployment.workers],
    }
    if deployment.store is not None:
        # The embedded server and its backends (daprd keeps a pool of connections open).
        groups["store"] = tree(postmaster(deployment.store))
    peak = PeakRss(groups)
    try:
        # Warm-up (not measured): imports, connections, first turns.
        warmup = max(5, min(concurrency, 50))
        run_client(deployment, workdir, "warmup", warmup, concurrency, args.activities)
        cpu0, rss0 = cpu_seconds(groups), rss_bytes(groups["engine"])
        result = run_client(deployment, workdir, "measure", args.workflows, concurrency, args.activities)
        cpu1, rss1 = cpu_seconds(groups), rss_bytes(groups["engine"])
    finally:
        peak.stop()
        deployment.stop()
    run = _figures(SYSTEMS[name], concurrency, args.activities, result)
    cpu = {g: cpu1[g] - cpu0[g] for g in cpu0} | {"client": result["cpu_s"]}
    run["cpu_ms_per_workflow"] = {g: round(v * 1000 / args.workflows, 2) for g, v in cpu.items()}
    run["peak_rss_mb"] = {g: round(v / 2**20, 1) for g, v in peak.peak.items()}
    if "store" in cpu:  # daprd's state lives in PostgreSQL: count it with the engine, as SQLite is in the sidecar's
        run["cpu_ms_per_workflow"]["engine"] = round((cpu["engine"] + cpu["store"]) * 1000 / args.workflows, 2)
        run["peak_rss_mb"]["engine"] = round(run["peak_rss_mb"]["engine"] + run["peak_rss_mb"]["store"], 1)
    # Both engines keep finished instances in memory; this is what one more costs.
    run["engine_rss_growth_kb_per_workflow"] = round((rss1 - rss0) / 1024 / args.workflows, 1)
    run["workers"] = len(deployment.workers)
    if deployment.state is not None:
        run["persisted"] = persisted(deployment.state, warmup + args.workflows)
    return run


def _figures(system: str, concurrency: int, activities: int, result: dict[str, Any]) -> dict[str, Any]:
    latencies = result["latencies_s"]
    # Per workflow: (its latency - its activities' own run time) / K; the own time is measured
    # inside each activity and summed by the workflow.
    overhead = sorted((t - own) / activities for t, own in zip(latencies, result["activity_own_s"], strict=True))
    own_per_activity = statistics.fmean(result["activity_own_s"]) / activities
    return {
        "system": system,
        "concurrency": concurrency,
        "workflows": len(latencies),
        "wall_s": round(result["wall_s"], 3),
        "workflows_per_s": round(len(latencies) / result["wall_s"], 2),
        "activities_per_s": round(len(latencies) * activities / result["wall_s"], 1),
        "latency_ms": latency_ms(latencies),
        "activity_own_us": round(own_per_activity * 1e6, 2),
        "overhead_per_activity_ms": {"p50": ms(percentile(overhead, 50)), "mean": ms(statistics.fmean(overhead))},
    }


if __name__ == "__main__":
    raise SystemExit(main())
