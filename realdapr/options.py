"""Command-line options both runners of real Dapr declare (``python -m realdapr run`` and ``python -m
realdapr.cluster``), so that they are spelled, defaulted and checked alike."""

from __future__ import annotations

import argparse
import os

LOG_LEVELS = ("debug", "info", "warn", "error")  # what Dapr's --log-level takes


def add_data_dir(parser: argparse.ArgumentParser, folder: str, holds: str) -> None:
    """``--data-dir``, by default ``$DATA_DIR/<folder>`` (``.data/<folder>``); ``holds`` says what a run keeps there."""
    default = os.path.join(os.environ.get("DATA_DIR", ".data"), folder)
    parser.add_argument("--data-dir", default=default, help=f"{holds} (default: $DATA_DIR/{folder}, .data/{folder})")


def add_log_level(parser: argparse.ArgumentParser, of: str) -> None:
    """``--log-level`` of the Dapr processes named by ``of``: one of Dapr's levels, ``info`` by default."""
    parser.add_argument("--log-level", default="info", choices=LOG_LEVELS, help=f"the log level of {of}")
