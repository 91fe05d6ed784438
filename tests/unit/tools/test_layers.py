"""The import layers of ``make check`` (``devtools.layers``): the repository keeps them, and a file that breaks one
is named with its line."""

from __future__ import annotations

from pathlib import Path

from devtools.layers import violations

# A tree of files, and what the layers say of it: a service or common importing past its layer, the sidecar
# importing the apps' library, a tool importing the tests. Relative imports and imports inside functions count.
TREE = {
    "payment/__init__.py": "",
    "payment/api.py": "import json\nfrom common.db import Database\nfrom inventory import domain\n",
    "payment/cli.py": "def main():\n    from devtools.ports import free_port\n",
    "common/db.py": "from . import settings\nimport orchestrator.domain\n",
    "bench/run.py": "from realdapr.binaries import find\nfrom tests.support import REPO\n",
    "sidecar/engine.py": "from .model import Instance\nfrom common import contracts\n",
}


def test_the_repository_keeps_its_import_layers():
    assert violations() == []


def test_every_import_against_the_layers_is_named_with_its_file_and_line(tmp_path: Path):
    for path, text in TREE.items():
        (tmp_path / path).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / path).write_text(text)
    assert violations(tmp_path) == [
        "bench/run.py:2: bench imports tests",
        "common/db.py:2: common imports orchestrator",
        "payment/api.py:3: payment imports inventory",
        "payment/cli.py:2: payment imports devtools",
        "sidecar/engine.py:2: sidecar imports common",
    ]
