"""The body every workflow activity shares: its injected faults around its effect (one use case in one
transaction), permanent errors made non-retryable, and one log line with the result."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from typing import TypeVar

from common.contracts import NonRetryableError
from common.faults import FaultInjector

log = logging.getLogger(__name__)
T = TypeVar("T")


async def run_activity(
    faults: FaultInjector, activity: str, order_id: str, effect: Callable[[], Awaitable[T]],
    permanent: tuple[type[Exception], ...] = (),
) -> T:
    """Fire ``activity``'s faults, run ``effect``, fire its after-commit faults, return the result.

    Errors in ``permanent`` (a key reused for another request, a malformed request) become
    ``NonRetryableError``: retrying cannot fix them, so the saga's retry policy gives up at once.
    """
    await faults.before(activity, order_id)
    try:
        result = await effect()
    except permanent as exc:
        raise NonRetryableError(str(exc)) from exc
    log.info("%s %s: %s", activity, order_id, result)
    await faults.after_commit(activity, order_id)
    return result
