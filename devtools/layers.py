"""The import layers, checked (``python -m devtools.layers``; ``make check`` runs it): which top-level package of
this repository may import which. The apps stand on ``common`` alone, ``common`` on nothing of ours, the sidecar
on nothing of ours (it is an engine any Dapr app could use), the tools that run things on anything, and nothing
on the tests. Every ``import`` and ``from ... import`` is read, inside functions too, relative ones resolved.
"""

from __future__ import annotations

import ast
import sys
from collections.abc import Iterator
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
SERVICES = ("inventory", "payment", "shipping", "notification")
PRODUCT = ("common", "orchestrator", *SERVICES)
TOOLS = ("sidecar", "realdapr", "devtools", "bench", "chaos", "shop")
# What each package may import of this repository besides itself. The tests may import everything.
ALLOWED: dict[str, frozenset[str]] = {
    "common": frozenset(),
    "orchestrator": frozenset({"common"}),
    **{service: frozenset({"common"}) for service in SERVICES},
    "sidecar": frozenset(),
    **{tool: frozenset(PRODUCT + TOOLS) for tool in TOOLS if tool != "sidecar"},
    "tests": frozenset(PRODUCT + TOOLS),
}
OURS = frozenset(ALLOWED)


def imported(path: Path, package: str) -> Iterator[tuple[int, str]]:
    """(line, top-level module) for every import in the file at ``path``, a module of ``package`` (dotted)."""
    tree = ast.parse(path.read_text(), filename=str(path))
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield node.lineno, alias.name.split(".")[0]
        elif isinstance(node, ast.ImportFrom):
            if node.level:  # relative: inside the file's own top-level package
                yield node.lineno, package.split(".")[0]
            elif node.module:
                yield node.lineno, node.module.split(".")[0]


def violations(repo: Path = REPO) -> list[str]:
    """``path:line: A imports B`` for every import of ours that the layers do not allow."""
    found = []
    for top in sorted(ALLOWED):
        root = repo / top
        if not root.is_dir():
            continue
        for path in sorted(root.rglob("*.py")):
            package = ".".join(path.relative_to(repo).parent.parts)
            for line, module in imported(path, package):
                if module in OURS and module != top and module not in ALLOWED[top]:
                    found.append(f"{path.relative_to(repo)}:{line}: {top} imports {module}")
    return found


def main() -> int:
    found = violations()
    for line in found:
        print(line, file=sys.stderr)
    if found:
        print(
            f"{len(found)} import(s) against the layers (devtools/layers.py says which may import which)",
            file=sys.stderr,
        )
        return 1
    print("import layers: ok (services and orchestrator -> common; common and sidecar -> nothing of ours)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
