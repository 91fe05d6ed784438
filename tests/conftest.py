"""Shared fixtures: a real PostgreSQL for the whole test session and fresh, migrated databases per module.

``pg_server_url``: a server URL (``TEST_POSTGRES_URL`` if set, else a throwaway embedded server in a temp dir).
``database_factory``: ``await database_factory("payment", "payment:migrations")`` → the asyncpg URL of a new
database with that service's migrations applied; every database it made is dropped when the module ends.
"""

from __future__ import annotations

import os
import shutil
import tempfile
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from pathlib import Path

import pytest
import pytest_asyncio

from common.db import async_url, drop_database, ensure_database
from common.embedded_db import start_embedded
from common.migrate import migrate
from devtools.devdb import stop_embedded

DatabaseFactory = Callable[[str, str], Awaitable[str]]


@pytest.fixture(scope="session")
def pg_server_url() -> Iterator[str]:
    if os.environ.get("TEST_POSTGRES_URL"):
        yield os.environ["TEST_POSTGRES_URL"]
        return
    # Not tmp_path_factory: pytest prunes old numbered dirs of the same user, which would pull the data
    # directory from under a server still used by a concurrent run. Short path: the socket lives in it.
    root = Path(tempfile.mkdtemp(prefix="pgtest-"))
    pgdata = root / "data"
    url = start_embedded(pgdata)
    try:
        yield url
    finally:
        stop_embedded(pgdata)
        shutil.rmtree(root, ignore_errors=True)


@pytest_asyncio.fixture(scope="module")
async def database_factory(pg_server_url: str) -> AsyncIterator[DatabaseFactory]:
    created: list[str] = []

    async def make(service: str, migrations: str) -> str:
        name = f"test_{service.replace('-', '_')}_{uuid.uuid4().hex[:10]}"
        await ensure_database(pg_server_url, name)
        created.append(name)
        url = async_url(pg_server_url, name)
        await migrate(url, migrations)
        return url

    yield make
    for name in created:
        await drop_database(pg_server_url, name)


# --- the engine lanes of the end-to-end suite -------------------------------------------------------------


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption(
        "--engine",
        choices=("both", "sidecar", "dapr"),
        default="both",
        help="which workflow engine the end-to-end tests run on: the sidecar, real daprd (needs `make dapr`), "
        "or both (default; the daprd lane is skipped, and said so, when its binaries are missing)",
    )


_lanes: dict[str, dict[str, int]] = {}
_lane_skips: dict[str, str] = {}
_browser: dict[str, list[str]] = {}  # outcome -> skip reasons (or test ids) of the console's browser tests


def pytest_runtest_logreport(report: pytest.TestReport) -> None:
    in_dapr_lane = "[dapr" in report.nodeid  # by design the console is tested in the sidecar lane only
    if "browser" in report.keywords and not in_dapr_lane and (report.when == "call" or report.outcome != "passed"):
        reason = report.longrepr[2].removeprefix("Skipped: ") if isinstance(report.longrepr, tuple) else ""
        _browser.setdefault(report.outcome, []).append(reason)
    lane = next((engine for engine in ("sidecar", "dapr") if f"[{engine}" in report.nodeid), None)
    if lane is None or "/e2e/" not in report.nodeid.replace("\\", "/"):
        return
    if report.when == "call" or report.outcome != "passed":
        counts = _lanes.setdefault(lane, {})
        counts[report.outcome] = counts.get(report.outcome, 0) + 1
        if report.skipped and isinstance(report.longrepr, tuple):
            _lane_skips.setdefault(lane, report.longrepr[2].removeprefix("Skipped: "))


def pytest_terminal_summary(terminalreporter, exitstatus, config) -> None:
    if _browser:
        terminalreporter.section("console in a browser")
        ran = ", ".join(f"{len(v)} {k}" for k, v in sorted(_browser.items()) if k != "skipped")
        why = sorted(set(_browser.get("skipped", [])))
        skipped = f"{len(_browser['skipped'])} skipped: {'; '.join(why)}" if why else ""
        terminalreporter.write_line(f"headless Chromium: {', '.join(p for p in (ran, skipped) if p)}")
    if not _lanes:
        return
    terminalreporter.section("end-to-end lanes")
    for lane, title in (("sidecar", "sidecar lane"), ("dapr", "real-Dapr lane")):
        counts = _lanes.get(lane, {})
        ran = {k: v for k, v in counts.items() if k != "skipped"}
        text = ", ".join(f"{v} {k}" for k, v in sorted(ran.items())) or "nothing ran"
        if counts.get("skipped"):
            text += f"; {counts['skipped']} skipped: {_lane_skips.get(lane, '')}"
        terminalreporter.write_line(f"{title}: {text}")
