"""The whole system, started as `make run` and `make run-dapr` start it, once per engine (a lane each):

- ``sidecar``: ``python -m sidecar run -f <template>``;
- ``dapr``: ``python -m realdapr run -f <template>``: real placement, scheduler and one daprd per app, built by
  ``make dapr``. Skipped, and said so in the summary, when those binaries are not there.

The template is the repository's own dapr.yaml, rewritten only to use free ports, the test PostgreSQL server
and databases of the lane's own. Every app runs in its own process under the runner, talks to its engine
through the real SDK; tests drive it through the REST APIs only. ``--engine`` picks the lanes. Every test here is
marked ``e2e`` (``pytest -m e2e``).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
import subprocess
import sys
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
import yaml

from common.contracts import APP_IDS
from common.db import database_name, drop_database, ensure_database, libpq_url
from devtools.launcher import ENGINES, runner_command, wait_healthy, write_template
from devtools.ports import free_port
from devtools.processes import stop_runner
from realdapr import DAPR_VERSION
from realdapr.binaries import DaprError, find
from tests.support import REPO
from tests.support.otlp import Receiver

HERE = Path(__file__).parent
APPROVAL_TIMEOUT_SECONDS = 20


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if item.path.is_relative_to(HERE):
            item.add_marker(pytest.mark.e2e)


@dataclass
class System:
    engine: str  # "sidecar" or "dapr"
    urls: dict[str, str]  # app id -> base URL of the app's REST API
    log_path: Path
    process: subprocess.Popen
    engine_health: dict[str, str]  # app id -> its daprd's (or the sidecar's) /v1.0/healthz
    api_token: str  # the runner's DAPR_API_TOKEN: what a call to an engine's own API must send
    postgres_url: str  # the PostgreSQL server of the lane (the apps' databases and real Dapr's workflow store)
    workflow_db: str | None  # real Dapr's workflow state store database on it (table ``state``); None: the sidecar
    intruder_grpc: int  # the workflow gRPC port of app ``intruder`` (tests/support/intruder_app.py): in no policy
    engine_grpc: dict[str, int]  # app id -> the gRPC port of its daprd (or of the sidecar's listener for it)

    def engine_url(self, app_id: str) -> str:
        """The base URL of the app's daprd (or the sidecar's listener for it), e.g. for its workflow HTTP API."""
        return self.engine_health[app_id].removesuffix("/v1.0/healthz")

    def client(self, app_id: str) -> httpx.Client:
        return httpx.Client(base_url=self.urls[app_id], timeout=60)

    def log_tail(self, lines: int = 80) -> str:
        return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])


def _env(pg_server_url: str, traces_url: str) -> dict[str, str]:
    return {
        "POSTGRES_URL": pg_server_url,
        "FAULTS_ENABLED": "true",
        # Fast retries so fault scenarios finish in seconds; the policy shape is the production one.
        "SAGA_RETRY_FIRST_INTERVAL_MS": "100",
        "SAGA_RETRY_MAX_INTERVAL_MS": "400",
        "SAGA_RETRY_MAX_ATTEMPTS": "3",
        # Long enough to approve an order in a test, short enough to wait out in one (seconds, not a day).
        "APPROVAL_TIMEOUT_SECONDS": str(APPROVAL_TIMEOUT_SECONDS),
        # Traces on, to the test's own OTLP receiver (tests/otlp.py), exported within a fifth of a second.
        "OTEL_EXPORTER_OTLP_ENDPOINT": traces_url,
        "OTEL_BSP_SCHEDULE_DELAY": "200",
    }


def _add_intruder(template: Path) -> int:
    """Add app ``intruder`` to the lane's template (after the shop's apps, which know nothing of it): an app whose
    ID no access policy names, run beside the shop as an attacker's process would be. The lane's components become
    a copy of the repository's with ``intruder`` added to the workflow store's scopes: without the store its daprd
    could run no workflow at all (in Kubernetes those scopes are one more wall; the policies are what is tested).
    Its workflow gRPC port."""
    doc = yaml.safe_load(template.read_text())
    components = template.parent / "components"
    shutil.copytree(REPO / "components", components)
    store = components / "workflowstore.yaml"
    component = yaml.safe_load(store.read_text())
    component["scopes"] = [*component.get("scopes", []), "intruder"]
    store.write_text(yaml.safe_dump(component, sort_keys=False))
    doc["common"]["resourcesPaths"] = [str(components)]
    grpc = free_port()
    doc["apps"].append(
        {
            "appID": "intruder",
            "appDirPath": str(REPO),
            "daprHTTPPort": free_port(),
            "daprGRPCPort": grpc,
            "command": ["python", str(HERE.parent / "support" / "intruder_app.py")],
            "env": {"PYTHONPATH": str(REPO)},
        }
    )
    template.write_text(yaml.safe_dump(doc, sort_keys=False))
    return grpc


def _workflow_db(tmp: Path) -> str:
    return f"{tmp.name.replace('-', '_')}_wf"


def _command(engine: str, tmp: Path, template: Path) -> list[str]:
    # As `make run` and `make run-dapr`: through devtools.devdb, which prints the banner once the apps answer
    # (POSTGRES_URL is set, so it starts no database of its own). Real Dapr as make run-dapr runs it: mTLS, the
    # access policies, signed history, the watchdog.
    devdb = [sys.executable, "-m", "devtools.devdb", "run", "--banner", str(template), "--"]
    if engine == "sidecar":
        return [*devdb, *runner_command(engine, tmp, template)]
    return [*devdb, *runner_command(engine, tmp, template, "--workflow-db", _workflow_db(tmp))]


def lane_skip_reason(engine: str, config: pytest.Config) -> str | None:
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


@pytest.fixture(params=ENGINES)
def engine(request: pytest.FixtureRequest) -> str:
    """An engine lane for a test that starts the system itself (the chaos run), chosen and skipped as ``system``."""
    reason = lane_skip_reason(request.param, request.config)
    if reason:
        pytest.skip(reason)
    return request.param


@pytest.fixture(scope="session", params=ENGINES)
def system(
    request: pytest.FixtureRequest, pg_server_url: str, tmp_path_factory: pytest.TempPathFactory, traces: Receiver
) -> Iterator[System]:
    engine = request.param
    reason = lane_skip_reason(engine, request.config)
    if reason:
        pytest.skip(reason)
    with started_system(
        engine, pg_server_url, tmp_path_factory.mktemp(f"e2e-{engine}-{uuid.uuid4().hex[:6]}"), traces
    ) as up:
        yield up


@contextlib.contextmanager
def started_system(
    engine: str,
    pg_server_url: str,
    tmp: Path,
    traces: Receiver,
    commands: dict[str, list[str]] | None = None,
) -> Iterator[System]:
    """The whole system on ``engine``, its databases and state under ``tmp``, until the block ends. ``commands``:
    app ID -> the command the template runs for that app instead of its own (e.g. another version of it)."""
    prefix = tmp.name.replace("-", "_")
    names = {app_id: f"{prefix}_{database_name(app_id)}" for app_id in APP_IDS}
    for name in names.values():
        asyncio.run(ensure_database(pg_server_url, name))
    layout = write_template(
        tmp, _env(pg_server_url, traces.url), {a: libpq_url(pg_server_url, n) for a, n in names.items()}
    )
    if commands:
        template = yaml.safe_load(layout.template.read_text())
        for app in template["apps"]:
            app["command"] = commands.get(app["appID"], app["command"])
        layout.template.write_text(yaml.safe_dump(template, sort_keys=False))
    intruder_grpc = _add_intruder(layout.template)
    engine_grpc = {a["appID"]: a["daprGRPCPort"] for a in yaml.safe_load(layout.template.read_text())["apps"]}
    log_path = tmp / "system.log"
    token = uuid.uuid4().hex
    with open(log_path, "wb") as log_file:
        process = subprocess.Popen(
            _command(engine, tmp, layout.template),
            cwd=REPO,
            stdout=log_file,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            env={**os.environ, "PYTHONUNBUFFERED": "1", "POSTGRES_URL": pg_server_url, "DAPR_API_TOKEN": token},
        )
    engine_health = {app: url + "/v1.0/healthz" for app, url in layout.engine_urls.items()}
    workflow_db = _workflow_db(tmp) if engine == "dapr" else None
    system = System(
        engine,
        layout.urls,
        log_path,
        process,
        engine_health,
        token,
        pg_server_url,
        workflow_db,
        intruder_grpc,
        engine_grpc,
    )
    try:
        wait_healthy(layout, lambda: process.poll() is None, system.log_tail)
        yield system
    finally:
        stop_runner(process)
        for name in names.values():
            asyncio.run(drop_database(pg_server_url, name))


@pytest.fixture
def api(system: System) -> Iterator[httpx.Client]:
    """A client of the order-api's REST API."""
    with system.client("order-api") as client:
        yield client


@pytest.fixture
def clear_faults(system: System) -> Iterator[None]:
    """Clears every fault of every app that hosts activities once the test ends (``usefixtures`` in a module whose
    tests arm faults)."""
    yield
    for app in ("inventory", "payment", "shipping", "notification"):
        with system.client(app) as client:
            client.delete("/faults")
