"""The size gate, checked (``python -m devtools.sizes``; ``make check`` runs it): no module of the product or of the
tools (Python, and the console's JavaScript) is over ``MOST_LINES`` lines. A module that grows past it does more
than one thing; split it where its parts separate (as ``orchestrator/sweep.py`` left ``service.py``). The tests are
not held to it.
"""

from __future__ import annotations

import sys
from pathlib import Path

from devtools.layers import PRODUCT, REPO, TOOLS

MOST_LINES = 400
KINDS = ("*.py", "*.js")


def oversized(repo: Path = REPO, most: int = MOST_LINES) -> list[str]:
    """``path: N lines`` for every module of the product and the tools over ``most`` lines, largest first."""
    found = []
    for top in (*PRODUCT, *TOOLS):
        for kind in KINDS:
            for path in (repo / top).rglob(kind):
                lines = len(path.read_text().splitlines())
                if lines > most:
                    found.append((lines, path.relative_to(repo).as_posix()))
    return [f"{name}: {lines} lines" for lines, name in sorted(found, key=lambda found: (-found[0], found[1]))]


def main() -> int:
    found = oversized()
    for line in found:
        print(line, file=sys.stderr)
    if found:
        print(f"{len(found)} module(s) over {MOST_LINES} lines: split each where its parts separate", file=sys.stderr)
        return 1
    print(f"module sizes: ok (none over {MOST_LINES} lines)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
