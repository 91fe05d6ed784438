"""The whole system, started as `make run` and `make run-dapr` start it, once per engine (a lane each):

- ``sidecar``: ``python -m sidecar run -f <template>``;
- ``dapr``: ``python -m realdapr run -f <template>``: real placement, scheduler and one daprd per app, built by
  ``make dapr``. Skipped, and said so in the summary, when those binaries are not there.

The template is the repository's own dapr.yaml, rewritten only to use free ports, the test PostgreSQL server
and databases of the lane's own. Every app runs in its own process under the runner, talks to its engine
through the real SDK; tests drive it through the REST APIs only. ``--engine`` picks the lanes.
"""

from __future__ import annotations

import asyncio
import os
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
import yaml

from common.db import database_name, drop_database, ensure_database, libpq_url
from realdapr import DAPR_VERSION
from realdapr.binaries import DaprError, find
from tests.otlp import Receiver
from tests.processes import answering, stop_runner

REPO = Path(__file__).resolve().parents[2]
ENGINES = ("sidecar", "dapr")


_given_ports: set[int] = set()


def _free_port() -> int:
    """A port free now, and never handed out before in this session (the kernel may offer one twice)."""
    while True:
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
        if port not in _given_ports:
            _given_ports.add(port)
            return port


@dataclass
class System:
    engine: str  # "sidecar" or "dapr"
    urls: dict[str, str]  # app id -> base URL of the app's REST API
    log_path: Path
    process: subprocess.Popen
    engine_health: dict[str, str]  # app id -> its daprd's (or the sidecar's) /v1.0/healthz
    api_token: str  # the runner's DAPR_API_TOKEN: what a call to an engine's own API must send

    def engine_url(self, app_id: str) -> str:
        """The base URL of the app's daprd (or the sidecar's listener for it), e.g. for its workflow HTTP API."""
        return self.engine_health[app_id].removesuffix("/v1.0/healthz")

    def client(self, app_id: str) -> httpx.Client:
        return httpx.Client(base_url=self.urls[app_id], timeout=60)

    def log_tail(self, lines: int = 80) -> str:
        return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])


def _write_template(
    tmp: Path, pg_server_url: str, databases: dict[str, str], traces_url: str
) -> tuple[dict[str, str], dict[str, str]]:
    template = yaml.safe_load((REPO / "dapr.yaml").read_text())
    common_env = template.setdefault("common", {}).setdefault("env", {})
    common_env.update(
        {
            "POSTGRES_URL": pg_server_url,
            "FAULTS_ENABLED": "true",
            # Fast retries so fault scenarios finish in seconds; the policy shape is the production one.
            "SAGA_RETRY_FIRST_INTERVAL_MS": "100",
            "SAGA_RETRY_MAX_INTERVAL_MS": "400",
            "SAGA_RETRY_MAX_ATTEMPTS": "3",
            # Traces on, to the test's own OTLP receiver (tests/otlp.py), exported within a fifth of a second.
            "OTEL_EXPORTER_OTLP_ENDPOINT": traces_url,
            "OTEL_BSP_SCHEDULE_DELAY": "200",
        }
    )
    # Paths in the template are relative to its folder: point them back at the repository.
    for key in ("resourcesPaths",):
        if key in template["common"]:
            template["common"][key] = [str(REPO / p) for p in template["common"][key]]
    if "configFilePath" in template["common"]:
        template["common"]["configFilePath"] = str(REPO / template["common"]["configFilePath"])
    urls, engine_health = {}, {}
    for app in template["apps"]:
        app["appDirPath"] = str(REPO / app["appDirPath"])
        app["appPort"] = _free_port()
        app["daprHTTPPort"] = _free_port()
        app["daprGRPCPort"] = _free_port()
        # Each lane has databases of its own: a lane never sees the orders the other one left running.
        app.setdefault("env", {})["DATABASE_URL"] = databases[app["appID"]]
        urls[app["appID"]] = f"http://127.0.0.1:{app['appPort']}"
        engine_health[app["appID"]] = f"http://127.0.0.1:{app['daprHTTPPort']}/v1.0/healthz"
    # The order-api's console reaches the other apps (their faults, the notifications) where this lane put them.
    order_api = next(app for app in template["apps"] if app["appID"] == "order-api")
    order_api["env"] |= {f"{app_id.upper()}_URL": url for app_id, url in urls.items() if app_id != "order-api"}
    (tmp / "dapr.yaml").write_text(yaml.safe_dump(template, sort_keys=False))
    return urls, engine_health


def _wait_healthy(system: System, timeout: float = 120) -> None:
    """Every app's /healthz and its engine's /v1.0/healthz answer 2xx (each app and each sidecar is up)."""
    deadline = time.monotonic() + timeout
    pending = {f"{app_id} app": url + "/healthz" for app_id, url in system.urls.items()}
    pending |= {f"{app_id} engine": url for app_id, url in system.engine_health.items()}
    while pending and time.monotonic() < deadline:
        if system.process.poll() is not None:
            raise RuntimeError(f"the runner exited with {system.process.returncode}:\n{system.log_tail()}")
        for name in answering(pending):
            del pending[name]
        time.sleep(0.3)
    if pending:
        raise RuntimeError(f"not healthy after {timeout}s: {sorted(pending)}\n{system.log_tail()}")


def _command(engine: str, tmp: Path) -> list[str]:
    # As `make run` and `make run-dapr`: through common.devdb, which prints the banner once the apps answer
    # (POSTGRES_URL is set, so it starts no database of its own).
    devdb = [sys.executable, "-m", "common.devdb", "run", "--banner", str(tmp / "dapr.yaml"), "--"]
    if engine == "sidecar":
        runner = ["sidecar", "run", "-f", str(tmp / "dapr.yaml"), "--state", str(tmp / "state.db")]
        runner += ["--policies", str(REPO / "components" / "access-policies")]  # as `make run`
    else:
        runner = ["realdapr", "run", "-f", str(tmp / "dapr.yaml"), "--data-dir", str(tmp / "dapr")]
        runner += [
            "--workflow-db",
            f"{tmp.name.replace('-', '_')}_wf",
            "--placement-port",
            "0",
            "--scheduler-port",
            "0",
        ]
    return [*devdb, sys.executable, "-m", *runner]


def _skip_reason(engine: str, config: pytest.Config) -> str | None:
    chosen = config.getoption("--engine")
    if chosen not in ("both", engine):
        return f"{engine} lane not chosen (--engine {chosen})"
    if engine == "dapr":
        try:
            found = find()
        except DaprError as exc:
            return f"real-Dapr lane skipped: {exc}"
        if found is None:
            return f"real-Dapr lane skipped: no Dapr {DAPR_VERSION} binaries (run `make dapr` to build them)"
    return None


@pytest.fixture(scope="session")
def traces() -> Iterator[Receiver]:
    """Where every app of every lane sends its spans."""
    receiver = Receiver()
    yield receiver
    receiver.close()


@pytest.fixture(scope="session", params=ENGINES)
def system(
    request: pytest.FixtureRequest, pg_server_url: str, tmp_path_factory: pytest.TempPathFactory, traces: Receiver
) -> Iterator[System]:
    engine = request.param
    reason = _skip_reason(engine, request.config)
    if reason:
        pytest.skip(reason)
    tmp = tmp_path_factory.mktemp(f"e2e-{engine}-{uuid.uuid4().hex[:6]}")
    prefix = tmp.name.replace("-", "_")
    names = {
        app_id: f"{prefix}_{database_name(app_id)}"
        for app_id in ("order-api", "inventory", "payment", "shipping", "notification")
    }
    for name in names.values():
        asyncio.run(ensure_database(pg_server_url, name))
    urls, engine_health = _write_template(
        tmp, pg_server_url, {a: libpq_url(pg_server_url, n) for a, n in names.items()}, traces.url
    )
    log_path = tmp / "system.log"
    token = uuid.uuid4().hex
    with open(log_path, "wb") as log_file:
        process = subprocess.Popen(
            _command(engine, tmp),
            cwd=REPO,
            stdout=log_file,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            env={**os.environ, "PYTHONUNBUFFERED": "1", "POSTGRES_URL": pg_server_url, "DAPR_API_TOKEN": token},
        )
    system = System(engine, urls, log_path, process, engine_health, token)
    try:
        _wait_healthy(system)
        yield system
    finally:
        stop_runner(process)
        for name in names.values():
            asyncio.run(drop_database(pg_server_url, name))
