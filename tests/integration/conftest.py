"""Integration tests: one component against the real things it talks to (PostgreSQL, the sidecar or real daprd
as processes, the runners' command lines). Every test here is marked ``integration`` (``pytest -m integration``).

Fixtures for the services' integration tests (real PostgreSQL through tests/conftest.py).

``db``: a fresh, migrated database of the service a test module is about, shared by the module's tests (which
use their own order IDs). The module says which with ``SERVICE = "<package>"`` (``inventory``, ``payment``,
``shipping``, ``notification``). The order-api's tests need a new database per test and have their own.
``faults``: that service's fault injector, enabled; ``activities``: its activities as ``build_activities`` makes
them (``BUILD_ARGS`` in the module: the arguments after ``db`` and ``faults``).
"""

from __future__ import annotations

import importlib
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import pytest_asyncio

from common.db import Database
from common.faults import FaultInjector

HERE = Path(__file__).parent


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if item.path.is_relative_to(HERE):
            item.add_marker(pytest.mark.integration)


@pytest_asyncio.fixture(scope="module")
async def db(request: pytest.FixtureRequest, database_factory) -> AsyncIterator[Database]:
    package = request.module.SERVICE
    database = Database(await database_factory(package, f"{package}:migrations"))
    yield database
    await database.dispose()


@pytest.fixture
def faults(request: pytest.FixtureRequest, db: Database) -> FaultInjector:
    activities = importlib.import_module(f"{request.module.SERVICE}.activities")
    return FaultInjector(db, activities.ACTIVITIES, enabled=True)


@pytest.fixture
def activities(request: pytest.FixtureRequest, db: Database, faults: FaultInjector):
    module = importlib.import_module(f"{request.module.SERVICE}.activities")
    return module.build_activities(db, faults, *getattr(request.module, "BUILD_ARGS", ()))


@dataclass
class StandInActivityContext:
    """A stand-in for the SDK's WorkflowActivityContext: the activities only receive it, never read it, and
    building the real one needs a work item from a sidecar, which these tests do not run."""

    workflow_id: str = "test-workflow"
    task_id: int = 0


@pytest.fixture
def ctx() -> StandInActivityContext:
    return StandInActivityContext()


@pytest.fixture
def exits() -> list[int]:
    return []


@pytest.fixture
def fake_exit(exits: list[int]):
    """Stands in for os._exit: records the code and raises SystemExit so the code after it never runs,
    as with a real crash, without ending the test process."""

    def exit_(code: int) -> None:
        exits.append(code)
        raise SystemExit(code)

    return exit_
