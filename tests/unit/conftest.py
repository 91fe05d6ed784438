"""Unit tests: no process, no network, no database; the saga on a fake workflow context, the engine's parts
in-process, rules and files. Every test here is marked ``unit`` (``pytest -m unit``, ``make test LEVEL=unit``)."""

from __future__ import annotations

from pathlib import Path

import pytest

HERE = Path(__file__).parent


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if item.path.is_relative_to(HERE):
            item.add_marker(pytest.mark.unit)
