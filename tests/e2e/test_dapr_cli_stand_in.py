"""A stand-in for ``dapr run -f .`` with the Dapr CLI 1.18, which cannot be built here (README, "Running on real
Dapr"), and the README's demo on it.

What the CLI does, done by this test: placement and scheduler started by hand without TLS (as ``dapr init`` leaves
them), one daprd per app of the repository's ``dapr.yaml`` with the CLI's flags, no sentry (so no mTLS), the
template's ``components/config.yaml`` as it is (no history signing) and no access policies; then each app's command
from the template, as written, started once through ``sh -c 'exec "$@"'`` with the environment the CLI gives
(``APP_ID``, ``APP_PORT``, ``DAPR_HTTP_PORT``, ``DAPR_GRPC_PORT``, ``DAPR_METRICS_PORT``, ``APP_CHANNEL_ADDRESS``,
``APP_PROTOCOL``, then the template's ``env``), the virtualenv's ``python`` first on ``PATH``. Nothing is ever
restarted by the test: an app that exits comes back only through the template's own restart wrapper
(``python -m sidecar.restarting``). Rewritten, as a user would for their machine: free ports, the test's
PostgreSQL (databases of this test's own, and the workflow store's connection string).
"""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import psutil
import pytest
import yaml

from common.contracts import APP_IDS
from common.db import database_name, drop_database, ensure_database, libpq_url
from devtools import health
from devtools.launcher import write_template
from devtools.ports import free_port
from realdapr.commands import control_plane_commands, control_plane_health, daprd_command, daprd_environment
from realdapr.ports import ControlPlanePorts
from realdapr.resources import write_resources
from sidecar.template import load_template
from tests.support import REPO
from tests.support.dapr_runs import BUILT
from tests.support.orders import new_id, order_body

TERMINAL = {"COMPLETED", "COMPENSATED", "REJECTED", "CANCELLED", "COMPENSATION_FAILED"}


@dataclass
class CliRun:
    urls: dict[str, str]
    log: Path
    processes: list[subprocess.Popen[bytes]]

    def client(self, app: str) -> httpx.Client:
        return httpx.Client(base_url=self.urls[app], timeout=60)

    def text(self) -> str:
        return self.log.read_text(errors="replace")


def _start(command: list[str], cwd: Path, env: dict[str, str], log: Path) -> subprocess.Popen[bytes]:
    with open(log, "ab") as out:
        return subprocess.Popen(command, cwd=cwd, env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True)


@pytest.fixture(scope="module")
def cli_run(
    request: pytest.FixtureRequest, pg_server_url: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[CliRun]:
    if request.config.getoption("--engine") not in ("both", "dapr"):
        pytest.skip("the Dapr CLI stand-in runs on real daprd: dapr lane not chosen")
    if BUILT is None:
        pytest.skip("real-Dapr lane skipped: no Dapr binaries (run `make dapr`)")
    tmp = tmp_path_factory.mktemp("cli")
    prefix = f"cli_{uuid.uuid4().hex[:6]}"
    names = {app: f"{prefix}_{database_name(app)}" for app in APP_IDS}
    workflow_db = f"{prefix}_wf"
    for name in [*names.values(), workflow_db]:
        asyncio.run(ensure_database(pg_server_url, name))
    env = {"POSTGRES_URL": pg_server_url, "SAGA_RETRY_FIRST_INTERVAL_MS": "100", "SAGA_RETRY_MAX_INTERVAL_MS": "400"}
    layout = write_template(tmp, env, {a: libpq_url(pg_server_url, n) for a, n in names.items()})
    raw = yaml.safe_load(layout.template.read_text())
    template = load_template(layout.template)
    resources = write_resources(template, tmp / "resources", libpq_url(pg_server_url, workflow_db))
    assert template.config_file == REPO / "components" / "config.yaml"
    log = tmp / "cli.log"
    processes: list[subprocess.Popen[bytes]] = []
    ports = ControlPlanePorts.from_bases(0, 0)
    daprd_env = daprd_environment(dict(os.environ))
    try:
        for command in control_plane_commands(BUILT, ports, tmp / "scheduler").values():
            processes.append(_start(command, tmp, daprd_env, log))
        health.wait_healthy(control_plane_health(ports), 60, "placement and scheduler")
        venv_path = f"{os.path.dirname(sys.executable)}{os.pathsep}{os.environ.get('PATH', '')}"
        for app, spec in zip(raw["apps"], template.apps, strict=True):
            grpc, http, metrics = app["daprGRPCPort"], app["daprHTTPPort"], free_port()
            daprd = daprd_command(
                spec, BUILT, grpc, http, resources, template.config_file, ports, "info", metrics=metrics
            )
            processes.append(_start(daprd, REPO, daprd_env, log))
            app_env = {
                **os.environ,
                "PATH": venv_path,
                "APP_ID": app["appID"],
                "APP_PORT": str(app["appPort"]),
                "DAPR_HTTP_PORT": str(http),
                "DAPR_GRPC_PORT": str(grpc),
                "DAPR_METRICS_PORT": str(metrics),
                "APP_CHANNEL_ADDRESS": "127.0.0.1",
                "APP_PROTOCOL": "http",
                **raw["common"]["env"],
                **app.get("env", {}),
            }
            processes.append(
                _start(["sh", "-c", 'exec "$@"', "--", *app["command"]], REPO / app["appDirPath"], app_env, log)
            )
        health.wait_healthy(
            layout.health_urls(), 120, "the apps and their daprd", context=lambda: log.read_text()[-3000:]
        )
        yield CliRun(layout.urls, log, processes)
    finally:
        started = [p for proc in processes for p in _tree(proc.pid)]
        for proc in reversed(processes):
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
        for proc in processes:
            try:
                proc.wait(30)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
        _, alive = psutil.wait_procs(started, timeout=15)
        for name in [*names.values(), workflow_db]:
            asyncio.run(drop_database(pg_server_url, name))
        assert [p for p in alive if p.status() != psutil.STATUS_ZOMBIE] == []


def _tree(pid: int) -> list[psutil.Process]:
    try:
        root = psutil.Process(pid)
        return [root, *root.children(recursive=True)]
    except psutil.NoSuchProcess:
        return []


def _wait_terminal(api: httpx.Client, order_id: str, timeout: float = 90) -> dict:
    deadline = time.monotonic() + timeout
    while True:
        order = api.get(f"/orders/{order_id}").json()
        if order["status"] in TERMINAL or time.monotonic() > deadline:
            return order
        time.sleep(0.2)


def test_the_readme_demo_runs_under_the_dapr_cli_way_each_app_started_once_and_never_restarted_by_the_runner(
    cli_run: CliRun,
) -> None:
    api = cli_run.client("order-api")
    pay, ship = cli_run.client("payment"), cli_run.client("shipping")
    body = order_body(items=[{"sku": "SKU-MUG", "quantity": 2}])

    # 1. happy; 2. declined card: unwound.
    happy = api.post("/orders?wait=true", json={**body, "order_id": new_id("demo-1")}).json()
    assert happy["status"] == "COMPLETED", happy
    declined = api.post(
        "/orders?wait=true",
        json={**body, "order_id": new_id("demo-2"), "payment": {"method": "card", "token": "tok_declined"}},
    ).json()
    assert declined["status"] == "COMPENSATED" and declined["failure"]["step"] == "charge", declined

    # 3. shipping fails for good: refunded and released.
    ship.put("/faults/ship", json={"mode": "error"}).raise_for_status()
    ship_fails = api.post("/orders?wait=true", json={**body, "order_id": new_id("demo-3")}).json()
    ship.delete("/faults").raise_for_status()
    assert ship_fails["status"] == "COMPENSATED" and ship_fails["failure"]["step"] == "ship", ship_fails
    refunded = pay.get(f"/payments/{ship_fails['order_id']}").json()
    assert refunded["refunded_cents"] == refunded["charged_cents"] == ship_fails["total_cents"]

    # 4. the crash demo: payment commits the charge and exits (70); the wrapper starts it again.
    pay.put("/faults/charge", json={"mode": "crash_after", "count": 1}).raise_for_status()
    crash_id = new_id("demo-4")
    assert api.post("/orders", json={**body, "order_id": crash_id}).status_code == 202
    crashed = _wait_terminal(api, crash_id)
    assert crashed["status"] == "COMPLETED", crashed
    pay.delete("/faults").raise_for_status()
    assert "exited with code 70" in cli_run.text() and "restarting in 0.5 s" in cli_run.text()
    payment = pay.get(f"/payments/{crash_id}").json()
    assert [e["kind"] for e in payment["entries"]] == ["charge"] and payment["charged_cents"] == crashed["total_cents"]
    assert all(proc.poll() is None for proc in cli_run.processes)  # nothing the "CLI" started has ended

    # 5. cancel in flight, after the crash: later orders are not stuck behind it.
    pay.put("/faults/charge", json={"mode": "delay", "delay_ms": 3000}).raise_for_status()
    cancel_id = new_id("demo-5")
    assert api.post("/orders", json={**body, "order_id": cancel_id}).status_code == 202
    time.sleep(0.5)
    assert api.post(f"/orders/{cancel_id}/cancel", json={"reason": "demo"}).status_code == 202
    pay.delete("/faults").raise_for_status()
    assert _wait_terminal(api, cancel_id)["status"] == "CANCELLED"

    # The list, the history, and resubmitting the same order (idempotent) or another body under its ID (409).
    listed = [o["order_id"] for o in api.get("/orders", params={"status": "COMPLETED", "limit": 50}).json()["items"]]
    assert {happy["order_id"], crash_id} <= set(listed)
    history = api.get(f"/orders/{crash_id}/history").json()
    assert [e["name"] for e in history if e["type"] == "TaskScheduled"][:3] == [
        "validate_order",
        "reserve_inventory",
        "charge",
    ]
    again = api.post("/orders?wait=true", json={**body, "order_id": happy["order_id"]})
    assert again.status_code == 200 and again.json()["status"] == "COMPLETED"
    other = api.post("/orders", json={**body, "order_id": happy["order_id"], "customer_id": "someone-else"})
    assert other.status_code == 409
    later = api.post("/orders?wait=true", json={**body, "order_id": new_id("later")}).json()
    assert later["status"] == "COMPLETED", later
