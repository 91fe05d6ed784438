"""The ``python -m chaos`` command: parses the options, starts the system, runs the workload and the injector side
by side with progress lines, clears the faults, waits (bounded) for every order to end, checks, reports; exit 1 on
any violation, 2 when the system could not be run at all."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import datetime as dt
import shutil
import signal
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

from devtools.options import add_engine_option, add_load_options
from orchestrator.domain import TERMINAL, WORKFLOW_FAILED

from .checks import Urls, check, products, resolve, statuses
from .cluster import ClusterSystem
from .injector import Injected, clear_faults, inject
from .report import RunInfo, render
from .schedule import ALL_DISRUPTIONS, CLUSTER_ONLY, DAPR_ONLY, Plan, make_plan
from .system import ChaosSetupError, System
from .workload import Progress, run_workload

ORDER_TIMEOUT_S = 240.0
NAMED_AT_THE_END = 5  # the progress line names the orders still going once this few are left
PROGRESS_EVERY_S = 5.0
SWITCHES = {
    "faults": "fault",
    "app-kills": "kill_app",
    "runner-kills": "kill_runner",
    "postgres-restarts": "restart_postgres",
    "daprd-kills": "kill_daprd",
    "control-plane-kills": "kill_control_plane",
    "node-crashes": "crash_node",
    "node-pauses": "pause_node",
    "partitions": "partition_node",
}


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="python -m chaos",
        description="Start the whole system with its own PostgreSQL on free ports, run a seeded mix of orders "
        "(happy, declined card, out of stock, undeliverable, cancelled at a random moment, large ones the risk "
        "review leaves to a person who approves, rejects or lets the deadline pass) while injecting at random "
        "every fault mode on every activity, SIGKILLs of single apps (some while an order's risk review, a child "
        "workflow, runs or while it awaits approval), SIGKILLs of the whole runner (then a "
        "restart on the same state) and immediate-mode PostgreSQL restarts, and on real Dapr SIGKILLs of single "
        "daprd processes and of placement, scheduler and sentry; then clear the faults, wait for every order to end "
        "and check the invariants through the REST APIs. Exit 1 on any violation, 2 when the system could not be "
        "run.",
    )
    add_load_options(p, "orders to send")
    p.add_argument(
        "--seed",
        type=int,
        default=1,
        help="seed of the workload and of the disruption schedule (default 1): the same seed gives the same schedule",
    )
    add_engine_option(p)
    p.add_argument(
        "--topology",
        choices=("single", "cluster"),
        default="single",
        help="single: every app once on this host (default); cluster: real Dapr across simulated hosts "
        "(realdapr.cluster, two nodes each running every app; needs root, `make dapr` and `make k8s-tools`), "
        "adding node crashes, node pauses and network partitions, without runner kills",
    )
    p.add_argument(
        "--settle-timeout",
        type=float,
        default=300.0,
        metavar="S",
        help="how long to wait, once the faults are cleared, for every order to end (default 300 s)",
    )
    for switch, kind in SWITCHES.items():
        p.add_argument(f"--no-{switch}", dest=kind, action="store_false", help=f"no {switch.replace('-', ' ')}")
    p.add_argument("--plan", action="store_true", help="print the schedule (orders and disruptions) and exit")
    p.add_argument(
        "--keep",
        action="store_true",
        help="keep the run's folder (logs, databases, state) even when it passes; it is always kept when it does not",
    )
    return p


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    enabled = {k for k in ALL_DISRUPTIONS if getattr(args, k)}
    if args.topology == "cluster":
        args.engine = "dapr"  # a cluster is real Dapr
        enabled.discard("kill_runner")
    else:
        enabled -= CLUSTER_ONLY  # one host: no node to crash, pause or cut off
    if args.engine != "dapr":
        enabled -= DAPR_ONLY  # the sidecar has no daprd, placement, scheduler or sentry to kill
    plan = make_plan(args.seed, args.orders, frozenset(enabled))
    if args.plan:
        print(_plan_text(plan))
        return 0
    if args.engine == "dapr":
        from realdapr.binaries import DaprError, find

        try:
            found = find()
        except DaprError as err:
            found, why = None, str(err)
        else:
            why = "no Dapr binaries: run `make dapr` first"
        if found is None:
            print(f"chaos --engine dapr: {why}", file=sys.stderr)
            return 2
    # A SIGTERM ends the run as Ctrl-C does: the system and its PostgreSQL are stopped on the way out.
    signal.signal(signal.SIGTERM, _interrupt)
    if args.topology == "cluster":
        from realdapr.cluster.launch import why_not_here

        reason = why_not_here()
        if reason:
            print(f"chaos --topology cluster: {reason}", file=sys.stderr)
            return 2
    folder = Path(tempfile.mkdtemp(prefix="chaos-"))
    system: System | ClusterSystem = (
        ClusterSystem(folder, args.orders) if args.topology == "cluster" else System(args.engine, folder, args.orders)
    )
    code = 2
    try:
        code = asyncio.run(_run(args, plan, system))
    except ChaosSetupError as err:
        print(f"chaos: the system could not be run: {err}", file=sys.stderr)
    except KeyboardInterrupt:
        print("chaos: interrupted", file=sys.stderr)
        code = 130
    finally:
        _say("stopping the system")
        system.stop()
        if code == 0 and not args.keep:
            shutil.rmtree(folder, ignore_errors=True)
        else:
            _say(f"kept {folder} (system.log: every app's and the engine's output)")
    return code


def _interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt


def _say(message: str) -> None:
    print(f"[chaos] {message}", flush=True)


async def _run(args: argparse.Namespace, plan: Plan, system: System | ClusterSystem) -> int:
    started = dt.datetime.now(dt.UTC)
    t0 = time.monotonic()
    _say(
        f"{len(plan.orders)} orders, {len(plan.disruptions)} disruptions planned (seed {plan.seed}); starting the "
        f"system on {args.engine} in {system.folder}"
    )
    await asyncio.to_thread(system.start)
    assert system.layout is not None
    urls = Urls(system.layout.urls, system.layout.engine_urls["order-api"], system.token)
    initial_stock = await products(urls)
    _say(f"system up in {time.monotonic() - t0:.0f} s; sending orders")

    progress = Progress(len(plan.orders))
    w0 = time.monotonic()
    injected = Injected()
    ticker = asyncio.create_task(_tick(progress, injected, len(plan.disruptions), w0))
    injecting = asyncio.create_task(inject(system, plan.disruptions, progress, w0, _say, injected))
    working = asyncio.create_task(
        run_workload(system.layout.urls["order-api"], plan.orders, args.concurrency, progress, ORDER_TIMEOUT_S)
    )
    try:
        # A system that does not come back from a disruption ends the run at once (ChaosSetupError).
        await asyncio.wait({working, injecting}, return_when=asyncio.FIRST_EXCEPTION)
        failed = injecting.exception() if injecting.done() else None
        if failed is not None:
            raise failed
        await working
        await injecting
    finally:
        for task in (ticker, injecting, working):
            task.cancel()
    workload_s = time.monotonic() - w0

    await clear_faults(system)
    s0 = time.monotonic()
    unsettled = await _settle(urls, plan, progress, args.settle_timeout)
    settle_s = time.monotonic() - s0
    _say("checking the invariants through the REST APIs")
    found = await check(urls, plan.orders, plan.disruptions, initial_stock, progress.refused, injected.survivors)
    info = RunInfo(
        args.engine,
        plan.seed,
        len(plan.orders),
        args.concurrency,
        started.strftime("%Y-%m-%d %H:%M UTC"),
        time.monotonic() - t0,
        workload_s,
        settle_s,
        progress.unanswered,
        unsettled,
    )
    print(render(info, injected.events, found), flush=True)
    return 1 if found.violations else 0


async def _tick(progress: Progress, injected: Injected, planned: int, t0: float) -> None:
    while True:
        await asyncio.sleep(PROGRESS_EVERY_S)
        events = injected.events
        kinds = Counter(e.disruption.kind for e in events)
        _say(
            f"+{time.monotonic() - t0:7.1f}s orders ended {len(progress.ended)}/{progress.total} "
            f"(submitted {progress.submitted}); disruptions {len(events)}/{planned}"
            + (": " + ", ".join(f"{k} {n}" for k, n in sorted(kinds.items())) if kinds else "")
        )
        if progress.submitted == progress.total and 0 < len(progress.going) <= NAMED_AT_THE_END:
            # The last few lanes, named: a run that hangs at the end says on which orders, and waiting for what.
            _say("still waiting: " + "; ".join(f"{oid} for {what}" for oid, what in sorted(progress.going.items())))


async def _settle(urls: Urls, plan: Plan, progress: Progress, timeout: float) -> int:
    """Wait until every order has ended, or ``timeout``; returns how many have not. An order whose saga workflow
    failed outside the saga (WORKFLOW_FAILED: nothing more happens to it by itself) is resolved as an operator
    would, ``POST /orders/{id}/resolve``, and said so; the report counts it."""
    deadline = time.monotonic() + timeout
    pending = [o.order_id for o in plan.orders if o.order_id not in progress.ended]
    asked: set[str] = set()
    while pending:
        now = await statuses(urls, pending)
        for oid in sorted(oid for oid, status in now.items() if status == WORKFLOW_FAILED and oid not in asked):
            asked.add(oid)
            why = await resolve(urls, oid)
            _say(f"{oid} is WORKFLOW_FAILED ({why}): resolving it, as an operator would")
        pending = [oid for oid, status in now.items() if status not in TERMINAL]
        if not pending or time.monotonic() > deadline:
            break
        _say(f"faults cleared; waiting for {len(pending)} orders to end (first: {pending[0]})")
        with contextlib.suppress(asyncio.CancelledError):
            await asyncio.sleep(2)
    return len(pending)


def _plan_text(plan: Plan) -> str:
    kinds = Counter(o.kind for o in plan.orders)
    lines = [
        f"seed {plan.seed}: {len(plan.orders)} orders ("
        + ", ".join(f"{k} {n}" for k, n in sorted(kinds.items()))
        + f"), {len(plan.disruptions)} disruptions:"
    ]
    lines += [f"  after order #{d.at:<6} {d.describe()}" for d in plan.disruptions]
    return "\n".join(lines)
