"""Command-line options the tools share (``bench.system``, ``bench.engines``, ``python -m chaos``): which engine
runs the system, how many orders at what concurrency, and counts that must be whole numbers of at least 1."""

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


def add_load_options(parser: argparse.ArgumentParser, orders_help: str) -> None:
    """``--orders N`` (1000) sent with ``--concurrency C`` (16) in flight at once; ``orders_help`` says what for."""
    parser.add_argument("--orders", type=positive_int, default=1000, metavar="N", help=f"{orders_help} (1000)")
    parser.add_argument(
        "--concurrency", type=positive_int, default=16, metavar="C", help="orders in flight at once (16)"
    )
