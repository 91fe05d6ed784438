"""The import layers of ``make check`` (``devtools.layers``): the repository keeps them, and a file that breaks one
is named with its line."""

from __future__ import annotations

from pathlib import Path

from devtools.layers import violations


def write(root: Path, path: str, text: str) -> None:
    file = root / path
    file.parent.mkdir(parents=True, exist_ok=True)
    file.write_text(text)


def test_the_repository_keeps_its_import_layers():
    assert violations() == []


def test_a_service_importing_another_service_or_a_tool_is_named_with_its_line(tmp_path: Path):
    write(tmp_path, "payment/__init__.py", "")
    write(tmp_path, "payment/api.py", "import json\nfrom common.db import Database\nfrom inventory import domain\n")
    write(tmp_path, "payment/cli.py", "def main():\n    from devtools.ports import free_port\n")
    assert violations(tmp_path) == [
        "payment/api.py:3: payment imports inventory",
        "payment/cli.py:2: payment imports devtools",
    ]


def test_common_may_import_nothing_of_ours_and_nothing_may_import_the_tests(tmp_path: Path):
    write(tmp_path, "common/db.py", "from . import settings\nimport orchestrator.domain\n")
    write(tmp_path, "bench/run.py", "from realdapr.binaries import find\nfrom tests.support import REPO\n")
    write(tmp_path, "sidecar/engine.py", "from .model import Instance\nfrom common import contracts\n")
    assert violations(tmp_path) == [
        "bench/run.py:2: bench imports tests",
        "common/db.py:2: common imports orchestrator",
        "sidecar/engine.py:2: sidecar imports common",
    ]
