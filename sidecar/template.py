"""Reads a Dapr multi-app run template (the file `dapr run -f` reads) into launch specs, and builds
the environment each app's command gets. Pure: no ports are bound and no process is started here."""

from __future__ import annotations

import os
import shutil
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeAlias

import yaml

from .restarting import unwrap

# `dapr run -f <dir>` looks for this file inside the folder.
TEMPLATE_NAMES = ("dapr.yaml", "dapr.yml")
DEFAULT_APP_PROTOCOL = "http"
DEFAULT_CHANNEL_ADDRESS = "127.0.0.1"


class TemplateError(Exception):
    """The template cannot be used. The message is one line naming the file and the problem."""


# Makes the TemplateError for a problem, naming the template's file; the caller raises it.
_Fail: TypeAlias = Callable[[str], TemplateError]


@dataclass(frozen=True)
class AppSpec:
    """One entry of ``apps[]``, defaults applied. Port 0 means "pick a free port" (the sidecar's
    ports) or "none" (``app_port``); ``env`` is ``common.env`` overlaid with the app's own ``env``;
    ``command`` without the restart wrapper the Dapr CLI needs (``python -m sidecar.restarting --``),
    since the runners restart an app themselves."""

    app_id: str
    app_dir: Path
    command: tuple[str, ...]
    app_port: int = 0
    grpc_port: int = 0
    http_port: int = 0
    app_protocol: str = DEFAULT_APP_PROTOCOL
    app_channel_address: str = DEFAULT_CHANNEL_ADDRESS
    env: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class RunTemplate:
    """The template: its apps, and the ``common`` Dapr resources folders and Configuration file (resolved
    against the template's folder, as the CLI does). The sidecar itself needs neither; real daprd does."""

    path: Path
    name: str | None
    apps: tuple[AppSpec, ...]
    resources_paths: tuple[Path, ...] = ()
    config_file: Path | None = None


def load_template(path: str | Path) -> RunTemplate:
    """Read and check a run template; ``path`` may be the file or the folder holding ``dapr.yaml``.

    Raises ``TemplateError`` for a missing file, malformed YAML, no apps, an app without command,
    a duplicate app ID or port, or a non-map ``env``. Unknown keys are ignored, as the Dapr CLI does.
    """
    file = _template_file(Path(path))
    try:
        text = file.read_text(encoding="utf-8")
    except OSError as exc:
        raise TemplateError(f"{file}: cannot read the template: {exc.strerror or exc}") from None
    try:
        doc = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise TemplateError(f"{file}: malformed YAML: {_one_line(exc)}") from None
    return _parse(file, doc)


def app_environment(
    app: AppSpec, grpc_port: int, http_port: int, parent: Mapping[str, str], python_dir: str
) -> dict[str, str]:
    """The environment `dapr run -f` gives ``app``'s command: the parent's, then the Dapr variables,
    then the template's ``env``. ``python_dir`` goes first on PATH so that ``python`` in a command
    is the sidecar's own interpreter (its virtualenv); a template that sets PATH itself wins."""
    env = dict(parent)
    env["PATH"] = os.pathsep.join(p for p in (python_dir, parent.get("PATH", "")) if p)
    env["APP_ID"] = app.app_id
    if app.app_port > 0:
        env["APP_PORT"] = str(app.app_port)
    env["DAPR_HTTP_PORT"] = str(http_port)
    env["DAPR_GRPC_PORT"] = str(grpc_port)
    env["APP_PROTOCOL"] = app.app_protocol
    env["APP_CHANNEL_ADDRESS"] = app.app_channel_address
    env.update(app.env)
    return env


def find_executable(app: AppSpec, env: Mapping[str, str]) -> str | None:
    """Where ``app.command[0]`` would be found when run from ``app.app_dir`` with ``env``, or None."""
    program = app.command[0]
    if os.sep in program:
        candidate = app.app_dir / program
        return str(candidate) if candidate.is_file() and os.access(candidate, os.X_OK) else None
    return shutil.which(program, path=env.get("PATH", os.defpath))


def _template_file(path: Path) -> Path:
    if path.is_dir():
        for name in TEMPLATE_NAMES:
            if (path / name).is_file():
                return path / name
        raise TemplateError(f"{path}: no {TEMPLATE_NAMES[0]} in this folder")
    if not path.exists():
        raise TemplateError(f"{path}: no such file")
    return path


def _parse(file: Path, doc: Any) -> RunTemplate:
    def fail(problem: str) -> TemplateError:
        return TemplateError(f"{file}: {problem}")

    if not isinstance(doc, dict):
        raise fail("the template must be a map with an 'apps' list")
    common = doc.get("common") or {}
    if not isinstance(common, dict):
        raise fail("'common' must be a map")
    raw_apps = doc.get("apps")
    if not isinstance(raw_apps, list) or not raw_apps:
        raise fail("no apps: 'apps' must be a non-empty list")
    common_env = _env(common.get("env"), "common.env", fail)
    base = file.parent
    apps = tuple(_app(i, raw, common, common_env, base, fail) for i, raw in enumerate(raw_apps))
    _check_unique(apps, fail)
    name = doc.get("name")
    resources = common.get("resourcesPaths") or []
    if isinstance(resources, str) or not all(isinstance(r, str) for r in resources):
        raise fail("common.resourcesPaths must be a list of folders")
    config = common.get("configFilePath")
    if config is not None and not isinstance(config, str):
        raise fail("common.configFilePath must be a file path")
    return RunTemplate(
        path=file,
        name=None if name is None else str(name),
        apps=apps,
        resources_paths=tuple((base / r).resolve() for r in resources),
        config_file=(base / config).resolve() if config else None,
    )


def _app(index: int, raw: Any, common: dict[str, Any], common_env: dict[str, str], base: Path, fail: _Fail) -> AppSpec:
    where = f"apps[{index}]"
    if not isinstance(raw, dict):
        raise fail(f"{where} must be a map")
    app_dir_raw = raw.get("appDirPath")
    if not isinstance(app_dir_raw, str) or not app_dir_raw.strip():
        raise fail(f"{where} has no appDirPath")
    app_dir = (base / app_dir_raw).resolve()
    # As the Dapr CLI does: the default app ID is the base name of the resolved folder.
    app_id = raw.get("appID") or app_dir.name
    if not isinstance(app_id, str):
        raise fail(f"{where}: appID must be a string")
    where = f"app {app_id!r}"
    if not app_dir.is_dir():
        raise fail(f"{where}: appDirPath {app_dir_raw!r} is not a folder ({app_dir})")
    command = raw.get("command")
    if not command:
        raise fail(f"{where} has no command")
    if not isinstance(command, list) or not all(isinstance(c, str) for c in command):
        raise fail(f'{where}: command must be a list of strings, e.g. ["python", "-m", "{app_id}"]')
    # The runners restart an app themselves: they run what the CLI's restart wrapper would (sidecar.restarting).
    command = list(unwrap(command))
    if not command:
        raise fail(f"{where}: the restart wrapper in its command wraps no command")
    protocol = raw.get("appProtocol") or common.get("appProtocol") or DEFAULT_APP_PROTOCOL
    return AppSpec(
        app_id=app_id,
        app_dir=app_dir,
        command=tuple(command),
        app_port=_port(raw.get("appPort"), f"{where}: appPort", fail),
        grpc_port=_port(raw.get("daprGRPCPort"), f"{where}: daprGRPCPort", fail),
        http_port=_port(raw.get("daprHTTPPort"), f"{where}: daprHTTPPort", fail),
        app_protocol=str(protocol),
        app_channel_address=str(raw.get("appChannelAddress") or DEFAULT_CHANNEL_ADDRESS),
        env={**common_env, **_env(raw.get("env"), f"{where}: env", fail)},
    )


def _port(value: Any, what: str, fail: _Fail) -> int:
    if value is None:
        return 0
    # bool is an int in Python, but `appPort: yes` is a mistake, not port 1.
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= 65535:
        raise fail(f"{what} must be a port number from 0 to 65535, not {value!r}")
    return value


def _env(value: Any, what: str, fail: _Fail) -> dict[str, str]:
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise fail(f"{what} must be a map of NAME: value (got a {type(value).__name__})")
    env = {}
    for key, item in value.items():
        if isinstance(item, dict | list):
            raise fail(f"{what}: the value of {key!r} must be a string")
        env[str(key)] = _scalar(item)
    return env


def _scalar(item: Any) -> str:
    # YAML turns `true`/`1` into bool/int; the CLI hands them to the app as their YAML spelling.
    if item is None:
        return ""
    if isinstance(item, bool):
        return "true" if item else "false"
    return str(item)


def _check_unique(apps: tuple[AppSpec, ...], fail: _Fail) -> None:
    seen_ids: set[str] = set()
    seen_ports: dict[int, str] = {}
    for app in apps:
        if app.app_id in seen_ids:
            raise fail(f"appID {app.app_id!r} is used by two apps")
        seen_ids.add(app.app_id)
        for what, port in (("appPort", app.app_port), ("daprGRPCPort", app.grpc_port), ("daprHTTPPort", app.http_port)):
            if port == 0:
                continue
            if port in seen_ports:
                raise fail(f"port {port} is used twice ({seen_ports[port]} and app {app.app_id!r} {what})")
            seen_ports[port] = f"app {app.app_id!r} {what}"


def _one_line(exc: yaml.YAMLError) -> str:
    mark = getattr(exc, "problem_mark", None)
    problem = getattr(exc, "problem", None)
    if mark is not None and problem:
        return f"line {mark.line + 1}, column {mark.column + 1}: {problem}"
    return " ".join(str(exc).split())
