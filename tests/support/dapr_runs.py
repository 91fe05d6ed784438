"""Real-Dapr runs for the tests of ``python -m realdapr run``: whether ``make dapr`` has provided the binaries
(``needs_dapr``), a run's folder with its template and components (``run_template``), the run started in a session
of its own with its log (``start_run``), a flag a daprd of it was started with (``daprd_flag``), a trust root made
by the real sentry (``make_trust_root``), and the processes it left (``descendants``, ``all_gone``)."""

from __future__ import annotations

import asyncio
import os
import re
import subprocess
import textwrap
import time
from collections.abc import Mapping
from pathlib import Path

import psutil
import pytest

from devtools.launcher import runner_command
from devtools.ports import free_port
from realdapr import DAPR_VERSION
from realdapr.binaries import find
from realdapr.commands import sentry_command
from realdapr.ports import ControlPlanePorts
from realdapr.resources import state_store_yaml
from realdapr.trust import ensure_trust_root
from tests.support import REPO

BUILT = find()
needs_dapr = pytest.mark.skipif(BUILT is None, reason=f"no Dapr {DAPR_VERSION} binaries (run `make dapr`)")


# The actor state store of a test's run; realdapr points its connection string at the test's PostgreSQL.
STORE = state_store_yaml("replaced by the run")


def run_template(folder: Path, apps: str, components: Mapping[str, str] | None = None) -> Path:
    """A run's folder: ``components/`` with the test's state store (and ``components``: file name to text) and a
    ``dapr.yaml`` of ``apps`` (the YAML list under ``apps:``). Returns the path of ``dapr.yaml``."""
    (folder / "components").mkdir(parents=True, exist_ok=True)
    for name, text in {"store.yaml": STORE, **(components or {})}.items():
        (folder / "components" / name).write_text(text)
    header = 'version: 1\ncommon:\n  resourcesPaths: ["./components"]\napps:\n'
    (folder / "dapr.yaml").write_text(header + textwrap.indent(textwrap.dedent(apps), "  "))
    return folder / "dapr.yaml"


def one_app_template(folder: Path, http_port: int | None = None) -> Path:
    """One app that only sleeps: the run is about Dapr's processes, not about the app."""
    return run_template(
        folder,
        f"""\
        - appID: sleeper
          appDirPath: .
          daprHTTPPort: {http_port or free_port()}
          daprGRPCPort: {free_port()}
          command: ["python", "-c", "import time; time.sleep(600)"]
        """,
    )


def start_run(template: Path, tmp_path: Path, pg_server_url: str, *extra: str, env: dict[str, str] | None = None):
    """``python -m realdapr run`` of ``template`` as ``devtools.launcher`` starts it (free control-plane ports, its
    data under ``tmp_path``), on a workflow database of this test's own, in a session of its own; the process and
    its log (``tmp_path/run.log``), open for reading."""
    log = open(tmp_path / "run.log", "w+")  # noqa: SIM115 -- returned: the caller reads it while the run goes on
    workflow_db = f"wf_{tmp_path.name[-20:].replace('-', '_').lower()}"
    proc = subprocess.Popen(
        runner_command("dapr", tmp_path, template, "--workflow-db", workflow_db, *extra),
        cwd=REPO,
        env={**(env or os.environ), "POSTGRES_URL": pg_server_url},
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    return proc, log


def wait_for(log, text: str, proc: subprocess.Popen, timeout: float = 60) -> str:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        log.seek(0)
        seen = log.read()
        if text in seen:
            return seen
        if proc.poll() is not None:
            break
        time.sleep(0.2)
    log.seek(0)
    raise AssertionError(f"{text!r} not seen:\n{log.read()[-4000:]}")


def descendants(pid: int) -> list[psutil.Process]:
    try:
        return psutil.Process(pid).children(recursive=True)
    except psutil.NoSuchProcess:
        return []


def all_gone(processes: list[psutil.Process], timeout: float = 15) -> list[psutil.Process]:
    _, alive = psutil.wait_procs(processes, timeout=timeout)
    return [p for p in alive if p.status() != psutil.STATUS_ZOMBIE]


def daprd_flag(log_text: str, app_id: str, flag: str) -> str:
    """The value of ``flag`` on the command line the run logged for ``app_id``'s daprd (the last start of it)."""
    lines = re.findall(rf"app {re.escape(app_id)} daprd started \(pid \d+\): (.*)", log_text)
    assert lines, f"no start of {app_id}'s daprd in the log"
    words = lines[-1].split()
    return words[words.index(flag) + 1]


def make_trust_root(data_dir: Path) -> Path:
    """A trust root made by the real sentry, as a run's first start makes it, in ``data_dir/sentry``; its ca.crt."""
    assert BUILT is not None
    command = sentry_command(BUILT, ControlPlanePorts.from_bases(0, 0, 0), data_dir)
    return asyncio.run(ensure_trust_root(command, data_dir / "sentry", data_dir))
