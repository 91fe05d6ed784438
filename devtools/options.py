"""Command-line options the tools share (``bench.system``, ``bench.engines``, ``python -m chaos``): which engine
runs the system, and counts that must be whole numbers of at least 1."""

from __future__ import annotations

import argparse

from devtools.launcher import ENGINES


def positive_int(text: str) -> int:
    """An argparse type: a whole number >= 1."""
    if not text.isdigit() or int(text) < 1:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number >= 1")
    return int(text)


def add_engine_option(parser: argparse.ArgumentParser) -> None:
    """``--engine sidecar|dapr``: the workflow engine under the system, the sidecar by default."""
    parser.add_argument(
        "--engine",
        choices=ENGINES,
        default="sidecar",
        help="the workflow engine under the system: the sidecar (default) or real daprd (needs `make dapr`)",
    )
