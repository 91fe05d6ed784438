"""The local development PostgreSQL (``common.embedded_db``, the server an app starts when no database is
configured): stop, restart and find it. Also a command,
``python -m devtools.devdb start|stop|url|run [--banner TEMPLATE] -- COMMAND...``.

start: starts the embedded server if needed and prints its URL (for POSTGRES_URL);
stop: stops it cleanly (pg_ctl stop); url: prints the URL of the running server (exit 1 if it is not running);
run: runs COMMAND with POSTGRES_URL set (the one given, else the embedded server, started if needed and stopped
afterwards if ``run`` started it): what ``make run`` and ``make run-dapr`` exec, so that a SIGTERM to make stops
the command and then the database. With ``--banner TEMPLATE`` (the run template, dapr.yaml) it prints, once every
app of it answers, where the console, the APIs and their docs are (``devtools.banner``).
"""

from __future__ import annotations

import logging
import os
import signal
import subprocess
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from common.embedded_db import EMBEDDED_SYSTEM_USER, embedded_data_dir, embedded_postgres, server_lock, start_embedded

USAGE = "usage: python -m devtools.devdb start|stop|url|run [--banner TEMPLATE] -- COMMAND [ARG...]"


def stop_embedded(pgdata: Path) -> bool:
    """Stop the embedded server in ``pgdata`` (pg_ctl stop, fast mode). Returns False if it was not running."""
    pg_ctl = embedded_postgres().pg_ctl

    if not (pgdata / "postmaster.pid").exists():
        return False
    user = EMBEDDED_SYSTEM_USER if os.geteuid() == 0 else None
    with server_lock(pgdata):
        pg_ctl(["-w", "-m", "fast", "stop"], pgdata=pgdata, user=user, timeout=60)
    return True


def restart_embedded(pgdata: Path, mode: str = "fast") -> None:
    """Restart the embedded server in ``pgdata`` (pg_ctl restart, waiting until it is back). Mode ``immediate``
    drops every connection at once and makes the server recover from its WAL, as after a crash."""
    pg_ctl = embedded_postgres().pg_ctl

    user = EMBEDDED_SYSTEM_USER if os.geteuid() == 0 else None
    with server_lock(pgdata):
        pg_ctl(["-w", "-m", mode, "restart"], pgdata=pgdata, user=user, timeout=120)


def embedded_url(pgdata: Path) -> str | None:
    """The server URL of the embedded server in ``pgdata`` if it is running, else None."""
    PostmasterInfo = embedded_postgres().utils.PostmasterInfo

    info = PostmasterInfo.read_from_pgdata(pgdata) if pgdata.exists() else None
    uri: str | None = info.get_uri() if info is not None and info.is_running() else None
    return uri


def run(command: list[str], env: Mapping[str, str] | None = None, banner: Path | None = None) -> int:
    """Run ``command`` with POSTGRES_URL set; return its exit code (128 + N when signal N ended it). With
    ``banner`` (a run template), print where everything is once its apps answer.

    SIGTERM is passed on to the command. SIGINT is not: Ctrl-C in a terminal reaches the whole foreground
    process group, the command included, and passing it on would look like a second Ctrl-C ("kill now").
    """
    env = dict(os.environ if env is None else env)
    started_here = False
    pgdata = embedded_data_dir(env)
    if not env.get("POSTGRES_URL"):
        started_here = embedded_url(pgdata) is None
        if started_here:
            print(f"[devdb] starting the embedded PostgreSQL in {pgdata}", file=sys.stderr, flush=True)
        env["POSTGRES_URL"] = start_embedded(pgdata)
    apps = _banner_apps(banner)
    child = subprocess.Popen(command, env=env)
    if apps:
        from devtools.banner import announce_when_up, shop_command

        announce_when_up(apps, running=lambda: child.poll() is None, shop=shop_command())
    previous = {sig: signal.getsignal(sig) for sig in (signal.SIGINT, signal.SIGTERM)}
    signal.signal(signal.SIGTERM, lambda *_: child.send_signal(signal.SIGTERM))
    signal.signal(signal.SIGINT, lambda *_: None)
    try:
        code = child.wait()
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
        if started_here:
            print("[devdb] stopping the embedded PostgreSQL", file=sys.stderr, flush=True)
            stop_embedded(pgdata)
    return 128 - code if code < 0 else code


def _banner_apps(template: Path | None) -> list[Any]:
    if template is None:
        return []
    from devtools.banner import apps_of  # httpx and yaml: only for the banner

    return apps_of(template)


def main(argv: list[str]) -> int:
    banner = None
    if argv[:2] == ["run", "--banner"] and len(argv) > 2:
        banner = Path(argv[2])
        argv = ["run", *argv[3:]]
    if argv[:1] == ["run"] and argv[1:2] == ["--"] and len(argv) > 2:
        logging.basicConfig(level=logging.WARNING)
        if banner is not None and not banner.is_file():
            print(f"--banner {banner}: no such run template (dapr.yaml)", file=sys.stderr)
            return 2
        return run(argv[2:], banner=banner)
    if len(argv) != 1 or argv[0] not in ("start", "stop", "url"):
        print(USAGE, file=sys.stderr)
        return 2
    logging.basicConfig(level=logging.WARNING)
    pgdata = embedded_data_dir()
    command = argv[0]
    if command == "start":
        print(start_embedded(pgdata))
        return 0
    if command == "stop":
        stopped = stop_embedded(pgdata)
        print(f"stopped {pgdata}" if stopped else f"not running: {pgdata}", file=sys.stderr)
        return 0
    url = embedded_url(pgdata)
    if url is None:
        print(f"not running: {pgdata}", file=sys.stderr)
        return 1
    print(url)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
