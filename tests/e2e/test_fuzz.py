"""Every app holds to its OpenAPI document under generated requests (Schemathesis, against the running system):
no server error, no response outside its documented status, content type or schema, no schema-valid request
refused, and no order stored by a refused request (``tests/support/fuzz_hooks.py``).

``make test`` generates a few cases per operation (``FUZZ_EXAMPLES``, default 15); ``make fuzz`` many more. The
APIs do not depend on the workflow engine, so this runs in the sidecar lane only. The order-api's own /faults
routes are left out: they are the services' code (fuzzed there), and a crash fault armed on its own activity
would take the order-api down in the middle of its run.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import httpx
import pytest

from common.contracts import APP_IDS
from tests.support import REPO

EXAMPLES = int(os.environ.get("FUZZ_EXAMPLES", "15"))


@pytest.fixture
def clear_faults(system):
    yield
    for app in APP_IDS:
        httpx.delete(system.urls[app] + "/faults", timeout=30)


@pytest.mark.parametrize("app", APP_IDS)
def test_the_api_of_an_app_holds_to_its_openapi_document(system, clear_faults, app: str):
    if system.engine != "sidecar":
        pytest.skip("the APIs do not depend on the engine: fuzzed in the sidecar lane")
    command = [
        str(Path(sys.executable).with_name("st")),
        "run",
        system.urls[app] + "/schema/openapi.json",
        "--max-examples",
        str(EXAMPLES),
        "--seed",
        "20261130",
        "--checks",
        "all",
        "--request-timeout",
        "60",
    ]
    if app == "order-api":
        command += ["--exclude-path-regex", "^/faults"]
    done = subprocess.run(
        command,
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=1800,
        env={**os.environ, "SCHEMATHESIS_HOOKS": "tests.support.fuzz_hooks", "NO_COLOR": "1"},
    )
    generated = re.search(r"(\d+) generated", done.stdout)
    print(f"{app}: {generated.group(0) if generated else 'no count'}")
    assert done.returncode == 0, done.stdout[-6000:]
