"""What every service's workflow activities share: their body (``run_activity``: injected faults around the
effect, one use case in one transaction, permanent errors made non-retryable, one log line with the result) and
their registration on the worker (``register_activities``)."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Iterable, Mapping
from typing import Any, TypeVar

from dapr.ext.workflow import WorkflowRuntime

from common.contracts import NonRetryableError
from common.db import Database
from common.faults import FaultInjector
from common.idempotency import IdempotencyConflict
from common.settings import Settings

log = logging.getLogger(__name__)
T = TypeVar("T")


async def run_activity(
    faults: FaultInjector,
    activity: str,
    order_id: str,
    effect: Callable[[], Awaitable[T]],
    permanent: tuple[type[Exception], ...] = (),
) -> T:
    """Fire ``activity``'s faults, run ``effect``, fire its after-commit faults, return the result.

    A key reused for another request (``IdempotencyConflict``) and the errors in ``permanent`` (a malformed
    request) become ``NonRetryableError``: retrying cannot fix them, so the saga's retry policy gives up at once.
    """
    refused: tuple[type[Exception], ...] = (IdempotencyConflict, *permanent)
    await faults.before(activity, order_id)
    try:
        result = await effect()
    except refused as exc:
        raise NonRetryableError(str(exc)) from exc
    log.info("%s %s: %s", activity, order_id, result)
    await faults.after_commit(activity, order_id)
    return result


Build = Callable[[Database, FaultInjector], Mapping[str, Callable[..., Any]]]


def register_activities(runtime: WorkflowRuntime, settings: Settings, names: Iterable[str], build: Build) -> None:
    """Register the activities ``build(db, faults)`` makes. They run on the SDK worker's own thread and event
    loop, so they get a ``Database`` of their own (engines are per loop), never the HTTP app's."""
    assert settings.database_url, "run_service resolves the database before registering activities"
    db = Database(settings.database_url)
    faults = FaultInjector(db, names, enabled=settings.faults_enabled)
    for name, activity in build(db, faults).items():
        runtime.register_activity(activity, name=name)
