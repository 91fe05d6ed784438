"""Command line of the sidecar: ``serve`` (listeners only, for apps started elsewhere) and ``run -f``
(the listeners plus every app of a Dapr multi-app run template, as ``dapr run -f`` does)."""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import re
import secrets
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .access_policy import AccessPolicies, PolicyError, load_policies
from .retention import RetentionError, RetentionPolicy
from .supervisor import Launch, Supervisor, on_stop_signals
from .template import RunTemplate, TemplateError, app_environment, find_executable, load_template

if TYPE_CHECKING:
    from .server import AppListen, Sidecar

log = logging.getLogger("sidecar")

DEFAULT_STATE = Path(".sidecar") / "state.db"
_APP_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]*")


def main(argv: Sequence[str] | None = None) -> int:
    parser = _parser()
    args = parser.parse_args(argv)
    _configure_logging()
    state = Path(args.state) if args.state else Path.cwd() / DEFAULT_STATE
    try:
        policies = _policies(args.policies, [])
    except PolicyError as exc:
        print(f"[sidecar] error: {exc}", file=sys.stderr)
        return 1
    if args.command == "serve":
        return asyncio.run(_serve(args.app, state, args.retention, policies))
    try:
        template = load_template(args.file)
        _check_commands(template)
        # As daprd: the policies among the template's resources apply too.
        policies = _policies(args.policies, list(template.resources_paths))
    except (TemplateError, PolicyError) as exc:
        print(f"[sidecar] error: {exc}", file=sys.stderr)
        return 1
    return asyncio.run(_run(template, state, args.retention, policies))


def _policies(given: list[str] | None, resources: list[Path]) -> AccessPolicies | None:
    paths = [Path(p) for p in given or []] + [p for p in resources if p.is_dir()]
    return load_policies(paths) if paths else None


def parse_app(value: str) -> tuple[str, int, int | None]:
    """``APP_ID=PORT[:HTTP_PORT]`` → (app_id, grpc_port, http_port or None); 0 means a free port."""
    app_id, sep, ports = value.partition("=")
    if not sep or not _APP_ID.fullmatch(app_id):
        raise argparse.ArgumentTypeError(f"{value!r}: expected APP_ID=PORT[:HTTP_PORT], e.g. order-api=50001:3500")
    grpc, _, http = ports.partition(":")
    return app_id, _port(grpc, value), _port(http, value) if http else None


def _port(text: str, value: str) -> int:
    if not text.isdigit() or not 0 <= int(text) <= 65535:
        raise argparse.ArgumentTypeError(f"{value!r}: {text!r} is not a port number (0-65535, 0 = any free port)")
    return int(text)


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m sidecar", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True, metavar="{serve,run}")
    serve = commands.add_parser("serve", help="serve the workflow API of the given app IDs until stopped")
    serve.add_argument(
        "--app",
        action=_AppendApp,
        required=True,
        type=parse_app,
        metavar="APP_ID=PORT[:HTTP_PORT]",
        help="an app ID, its gRPC port and optionally its HTTP port on 127.0.0.1 (repeat per app)",
    )
    run = commands.add_parser(
        "run",
        help="start the sidecar and every app of a Dapr multi-app run template",
        description="Like `dapr run -f`. The folder of the running Python goes first on each app's PATH, "
        'so `command: ["python", ...]` runs in the sidecar\'s own virtualenv.',
    )
    run.add_argument("-f", "--file", required=True, help="the run template, or a folder holding dapr.yaml")
    for sub in (serve, run):
        sub.add_argument("--state", help=f"the state file (default: {DEFAULT_STATE} in the working directory)")
        sub.add_argument(
            "--policies",
            action="append",
            metavar="PATH",
            help="WorkflowAccessPolicy resources to enforce (a file, or a folder whose YAML files are read; repeat "
            "for more). run -f also reads the template's resourcesPaths, as daprd does",
        )
        sub.add_argument(
            "--retention",
            type=_retention,
            default=os.environ.get("SIDECAR_RETENTION") or None,
            metavar="POLICY",
            help="purge finished instances after this long, as daprd's stateRetentionPolicy: a Go duration for "
            "any ending (72h), or per ending (completed=1h,failed=720h,terminated=360h,anyTerminal=360h). "
            "Default: $SIDECAR_RETENTION, else keep them for ever",
        )
    return parser


def _retention(text: str) -> RetentionPolicy:
    try:
        return RetentionPolicy.parse(text)
    except RetentionError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


class _AppendApp(argparse.Action):
    """``--app`` may repeat, but neither an app ID nor a port may be given twice."""

    def __call__(
        self,
        parser: argparse.ArgumentParser,
        namespace: argparse.Namespace,
        value: Any,  # what the option's type, parse_app, returned
        option_string: str | None = None,
    ) -> None:
        apps: list[tuple[str, int, int | None]] = [*(getattr(namespace, self.dest) or []), value]
        ids = [app_id for app_id, _, _ in apps]
        ports = [p for _, grpc, http in apps for p in (grpc, http) if p]
        if ids.count(value[0]) > 1:
            raise argparse.ArgumentError(self, f"app ID {value[0]!r} is given twice")
        for port in ports:
            if ports.count(port) > 1:
                raise argparse.ArgumentError(self, f"port {port} is given twice")
        setattr(namespace, self.dest, apps)


def _check_commands(template: RunTemplate) -> None:
    """Fail before anything starts if a command cannot be found where the app will run it."""
    python_dir = os.path.dirname(sys.executable)
    for app in template.apps:
        env = app_environment(app, 0, 0, os.environ, python_dir)
        if find_executable(app, env) is None:
            raise TemplateError(f"{template.path}: app {app.app_id!r}: command {app.command[0]!r} not found")


async def _serve(
    apps: list[tuple[str, int, int | None]],
    state: Path,
    retention: RetentionPolicy | None,
    policies: AccessPolicies | None,
) -> int:
    from .server import AppListen

    stop = asyncio.Event()
    on_stop_signals(stop=stop.set, kill_now=lambda signum: os._exit(128 + signum), logger=log)
    sidecar = await _start([AppListen(*app) for app in apps], state, retention, policies)
    if sidecar is None:
        return 1
    log.info("ready; Ctrl-C or SIGTERM stops")
    await stop.wait()
    log.info("stopping")
    await sidecar.stop()
    return 0


async def _run(
    template: RunTemplate, state: Path, retention: RetentionPolicy | None, policies: AccessPolicies | None
) -> int:
    from .server import AppListen

    stop = asyncio.Event()
    supervisor: Supervisor | None = None
    forced: list[int] = []

    def kill_now(signum: int) -> None:
        log.warning("second stop request: killing every app now")
        forced.append(signum)
        if supervisor is not None:
            supervisor.kill_now()

    on_stop_signals(stop=stop.set, kill_now=kill_now, logger=log)
    _use_api_token(state.parent / "api-token")
    # Every app gets an HTTP port too (0 = a free one), as daprd always has one.
    listens = [AppListen(app.app_id, app.grpc_port, app.http_port) for app in template.apps]
    sidecar = await _start(listens, state, retention, policies)
    if sidecar is None:
        return 1
    python_dir = os.path.dirname(sys.executable)
    launches: list[Launch] = []
    for app in template.apps:
        grpc_port, http_port = sidecar.ports[app.app_id]
        assert http_port is not None  # every app was given an HTTP port above
        launches.append(
            Launch(
                app.app_id, app.command, app.app_dir, app_environment(app, grpc_port, http_port, os.environ, python_dir)
            )
        )
    supervisor = Supervisor(launches)
    try:
        await supervisor.run(stop)
    finally:
        await sidecar.stop(grace=0 if forced else 1.0)
    log.info("stopped")
    return 128 + forced[0] if forced else 0


def _use_api_token(path: Path) -> None:
    """A fresh API token for this run unless DAPR_API_TOKEN is set: the sidecar requires it and every app gets it
    (the SDK sends it), so no other local process can drive the workflows. Written to ``path`` (mode 600) for
    anyone who calls the sidecar by hand."""
    if not os.environ.get("DAPR_API_TOKEN"):
        os.environ["DAPR_API_TOKEN"] = secrets.token_urlsafe(32)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.touch(mode=0o600)
        path.write_text(os.environ["DAPR_API_TOKEN"] + "\n")
        log.info("API token for this run in %s (send it as the dapr-api-token header)", path)


async def _start(
    listens: list[AppListen], state: Path, retention: RetentionPolicy | None, policies: AccessPolicies | None
) -> Sidecar | None:
    """Start the listeners, or log why not and return None (a bad state file is never reset)."""
    from .server import start_sidecar
    from .store import StateError

    try:
        state.parent.mkdir(parents=True, exist_ok=True)
        sidecar = await start_sidecar(listens, state, retention=retention, policies=policies)
    except StateError as exc:
        log.error("%s", exc)
        return None
    except OSError as exc:
        log.error("cannot start: %s", exc)
        return None
    except RuntimeError as exc:
        # grpcio reports a port it cannot bind as RuntimeError("Failed to bind to address ...").
        if "bind" not in str(exc):
            raise
        log.error("cannot start: %s (port in use?)", str(exc).split(";")[0])
        return None
    return sidecar


def _configure_logging() -> None:
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("[sidecar] %(asctime)s %(levelname)s %(message)s", "%H:%M:%S"))
    logging.basicConfig(level=logging.INFO, handlers=[handler], force=True)
    # Our own loggers keep this handler even when a library reconfigures the root logger.
    ours = logging.getLogger("sidecar")
    ours.handlers = [handler]
    ours.propagate = False
    ours.setLevel(logging.INFO)
