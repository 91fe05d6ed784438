"""The whole system, started as `make run` starts it: `python -m sidecar run -f <template>` with the
repository's own dapr.yaml, rewritten only to use free ports and the test PostgreSQL server.

Every app runs in its own process under the runner, talks to the sidecar through the real SDK, and keeps
its data in its own database; tests drive it through the REST APIs only.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
import yaml

REPO = Path(__file__).resolve().parents[2]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@dataclass
class System:
    urls: dict[str, str]  # app id -> base URL of the app's REST API
    log_path: Path
    process: subprocess.Popen

    def client(self, app_id: str) -> httpx.Client:
        return httpx.Client(base_url=self.urls[app_id], timeout=60)

    def log_tail(self, lines: int = 80) -> str:
        return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])


def _write_template(tmp: Path, pg_server_url: str) -> dict[str, str]:
    template = yaml.safe_load((REPO / "dapr.yaml").read_text())
    common_env = template.setdefault("common", {}).setdefault("env", {})
    common_env.update({
        "POSTGRES_URL": pg_server_url,
        "FAULTS_ENABLED": "true",
        # Fast retries so fault scenarios finish in seconds; the policy shape is the production one.
        "SAGA_RETRY_FIRST_INTERVAL_MS": "100",
        "SAGA_RETRY_MAX_INTERVAL_MS": "400",
        "SAGA_RETRY_MAX_ATTEMPTS": "3",
    })
    # Paths in the template are relative to its folder: point them back at the repository.
    for key in ("resourcesPaths",):
        if key in template["common"]:
            template["common"][key] = [str(REPO / p) for p in template["common"][key]]
    if "configFilePath" in template["common"]:
        template["common"]["configFilePath"] = str(REPO / template["common"]["configFilePath"])
    urls = {}
    for app in template["apps"]:
        app["appDirPath"] = str(REPO / app["appDirPath"])
        app["appPort"] = _free_port()
        app["daprHTTPPort"] = _free_port()
        app["daprGRPCPort"] = _free_port()
        urls[app["appID"]] = f"http://127.0.0.1:{app['appPort']}"
    (tmp / "dapr.yaml").write_text(yaml.safe_dump(template, sort_keys=False))
    return urls


def _wait_healthy(system: System, timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    pending = set(system.urls)
    while pending and time.monotonic() < deadline:
        if system.process.poll() is not None:
            raise RuntimeError(f"the runner exited with {system.process.returncode}:\n{system.log_tail()}")
        for app_id in list(pending):
            try:
                if httpx.get(system.urls[app_id] + "/healthz", timeout=1).status_code == 200:
                    pending.discard(app_id)
            except httpx.HTTPError:
                pass
        time.sleep(0.3)
    if pending:
        raise RuntimeError(f"apps not healthy after {timeout}s: {sorted(pending)}\n{system.log_tail()}")


@pytest.fixture(scope="session")
def system(pg_server_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[System]:
    tmp = tmp_path_factory.mktemp("e2e")
    urls = _write_template(tmp, pg_server_url)
    log_path = tmp / "system.log"
    with open(log_path, "wb") as log_file:
        process = subprocess.Popen(
            [sys.executable, "-m", "sidecar", "run", "-f", str(tmp / "dapr.yaml"), "--state", str(tmp / "state.db")],
            cwd=REPO, stdout=log_file, stderr=subprocess.STDOUT, start_new_session=True,
            env={**os.environ, "PYTHONUNBUFFERED": "1"},
        )
    system = System(urls, log_path, process)
    try:
        _wait_healthy(system)
        yield system
    finally:
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
            try:
                process.wait(30)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait()
