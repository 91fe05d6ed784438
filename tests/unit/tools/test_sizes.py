"""The size gate of ``make check`` (``devtools.sizes``): the repository keeps it, and a module over the limit is
named with its size; the tests are not held to it."""

from __future__ import annotations

from pathlib import Path

from devtools.sizes import MOST_LINES, oversized


def test_no_module_of_the_product_or_the_tools_is_over_the_limit():
    assert oversized() == []


def test_every_module_over_the_limit_is_named_with_its_size_largest_first(tmp_path: Path):
    tree = {
        "common/db.py": MOST_LINES,  # at the limit: kept
        "orchestrator/service.py": MOST_LINES + 1,
        "realdapr/cluster/run.py": MOST_LINES + 70,
        "orchestrator/console/static/console.js": MOST_LINES + 5,  # the console's script counts too
        "tests/integration/test_big.py": MOST_LINES * 3,  # the tests are not held to it
        "notes/long.py": MOST_LINES * 2,  # not a package of ours
    }
    for path, lines in tree.items():
        (tmp_path / path).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / path).write_text("x = 1\n" * lines)
    assert oversized(tmp_path) == [
        f"realdapr/cluster/run.py: {MOST_LINES + 70} lines",
        f"orchestrator/console/static/console.js: {MOST_LINES + 5} lines",
        f"orchestrator/service.py: {MOST_LINES + 1} lines",
    ]
