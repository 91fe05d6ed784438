"""The whole system started as ``make run`` and ``make run-dapr`` start it, for the end-to-end tests, the system
benchmark and the chaos run: the repository's ``dapr.yaml`` rewritten to free ports (with settings and, if given,
databases of its own), the runner's command line for either engine, and a wait until every app and its engine
answer.
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path

import yaml

from common.contracts import ORDER_API
from devtools import health
from devtools.ports import LOOPBACK, free_port

REPO = Path(__file__).resolve().parents[1]
ENGINES = ("sidecar", "dapr")


@dataclass(frozen=True)
class Layout:
    """Where a rewritten template puts things."""

    template: Path
    urls: dict[str, str]  # app id -> base URL of the app's REST API
    engine_urls: dict[str, str]  # app id -> base URL of its daprd's (or the sidecar's) HTTP API

    def health_urls(self) -> dict[str, str]:
        """What must answer 2xx once the system is up: every app's /healthz and its engine's /v1.0/healthz."""
        return {
            **{f"{app} app": url + "/healthz" for app, url in self.urls.items()},
            **{f"{app} engine": url + "/v1.0/healthz" for app, url in self.engine_urls.items()},
        }


def write_template(folder: Path, env: Mapping[str, str], databases: Mapping[str, str] | None = None) -> Layout:
    """``folder/dapr.yaml``: the repository's template with ``env`` added to every app's environment, free ports
    for every app and its engine, paths pointing back at the repository and, per app in ``databases``, its
    ``DATABASE_URL``."""
    template = yaml.safe_load((REPO / "dapr.yaml").read_text())
    common = template.setdefault("common", {})
    common["env"] = {**common.get("env", {}), **env}
    # Paths in the template are relative to its folder: point them back at the repository.
    if "resourcesPaths" in common:
        common["resourcesPaths"] = [str(REPO / p) for p in common["resourcesPaths"]]
    if "configFilePath" in common:
        common["configFilePath"] = str(REPO / common["configFilePath"])
    urls, engine_urls = {}, {}
    for app in template["apps"]:
        app["appDirPath"] = str(REPO / app["appDirPath"])
        app["appPort"], app["daprHTTPPort"], app["daprGRPCPort"] = free_port(), free_port(), free_port()
        if databases and app["appID"] in databases:
            app.setdefault("env", {})["DATABASE_URL"] = databases[app["appID"]]
        urls[app["appID"]] = f"http://{LOOPBACK}:{app['appPort']}"
        engine_urls[app["appID"]] = f"http://{LOOPBACK}:{app['daprHTTPPort']}"
    # The order-api's console reaches the other apps (their faults, the notifications) where these ports put them.
    for app in template["apps"]:
        if app["appID"] == ORDER_API:
            app.setdefault("env", {}).update(
                {f"{app_id.upper()}_URL": url for app_id, url in urls.items() if app_id != "order-api"}
            )
    path = folder / "dapr.yaml"
    path.write_text(yaml.safe_dump(template, sort_keys=False))
    return Layout(path, urls, engine_urls)


def runner_command(engine: str, folder: Path, template: Path, *extra: str) -> list[str]:
    """The runner of ``engine`` for ``template``, its state under ``folder`` (the sidecar's state file, or real
    Dapr's data folder, its trust root included; a second start with the same ``folder`` resumes the same state).
    Both enforce the access policies in components/access-policies/, real Dapr with mTLS (its default) as in
    Kubernetes. Real Dapr gets free control-plane ports; its workflow database comes from ``extra``
    (``--workflow-db``) or the default."""
    if engine == "sidecar":
        # The access policies in components/access-policies/ are enforced, as `make run` does.
        return [
            sys.executable,
            "-m",
            "sidecar",
            "run",
            "-f",
            str(template),
            "--state",
            str(folder / "state.db"),
            "--policies",
            str(REPO / "components" / "access-policies"),
            *extra,
        ]
    if engine == "dapr":
        return [
            sys.executable,
            "-m",
            "realdapr",
            "run",
            "-f",
            str(template),
            "--data-dir",
            str(folder / "dapr"),
            "--placement-port",
            "0",
            "--scheduler-port",
            "0",
            "--sentry-port",
            "0",
            # The policies: components/access-policies, which realdapr finds beside the template's resources
            # (write_template points them back at the repository); a template of a test's own has none.
            *extra,
        ]
    raise ValueError(f"unknown engine {engine!r}; one of {', '.join(ENGINES)}")


def wait_healthy(
    layout: Layout, running: Callable[[], bool], log_tail: Callable[[], str], timeout: float = 120
) -> None:
    """Return once every app and every engine answers its health check. ``health.NotHealthy`` (with the log's
    tail) when ``running()`` turns false or ``timeout`` passes first."""
    health.wait_healthy(layout.health_urls(), timeout, "the system", running=running, context=log_tail)
