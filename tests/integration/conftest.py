"""Fixtures for the services' integration tests (real PostgreSQL through tests/conftest.py)."""

from __future__ import annotations

from dataclasses import dataclass

import pytest


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
