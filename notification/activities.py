"""Workflow activity hosted by notification: a thin wrapper that fires injected faults and calls service.py.

It runs on the SDK worker's own thread and event loop, so it gets its own ``Database``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from dapr.ext.workflow import WorkflowActivityContext, WorkflowRuntime

from common.activity import register_activities, run_activity
from common.contracts import NOTIFY, NotifyInput, NotifyResult
from common.db import Database
from common.faults import FaultInjector
from common.settings import Settings
from notification import service
from notification.domain import InvalidNotification

ACTIVITIES = (NOTIFY,)


def build_activities(db: Database, faults: FaultInjector) -> dict[str, Callable[..., Any]]:
    async def notify(ctx: WorkflowActivityContext, request: NotifyInput) -> NotifyResult:
        return await run_activity(
            faults, NOTIFY, request.order_id, lambda: service.notify(db, request), permanent=(InvalidNotification,)
        )

    return {NOTIFY: notify}


def register(runtime: WorkflowRuntime, settings: Settings) -> None:
    register_activities(runtime, settings, ACTIVITIES, build_activities)
