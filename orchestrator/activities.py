"""The order-api's workflow registrations: the saga itself, the operator's resolution of a failed one, the wake of a
saga's child that never ran, and their one local activity, record_order_status.

Activities run on the SDK worker's own thread and event loop, so they get their own ``Database``.
"""

from __future__ import annotations

import logging
from typing import Any

from dapr.ext.workflow import WorkflowActivityContext, WorkflowRuntime

from common.activity import register_activities
from common.contracts import ORDER_SAGA
from common.db import Database
from common.faults import FaultInjector
from common.settings import Settings
from orchestrator import service
from orchestrator.domain import RECORD_ORDER_STATUS, RESOLVE_ORDER, WAKE_CHILD, OrderStatusUpdate
from orchestrator.resolution import resolve_order
from orchestrator.saga import order_saga
from orchestrator.wake import wake_child

ACTIVITIES = (RECORD_ORDER_STATUS,)
log = logging.getLogger(__name__)


def build_activities(db: Database, faults: FaultInjector) -> dict[str, Any]:
    async def record_order_status(ctx: WorkflowActivityContext, update: OrderStatusUpdate) -> dict[str, bool]:
        await faults.before(RECORD_ORDER_STATUS, update.order_id)
        applied = await service.record_status(db, update)
        if not applied:  # a replayed or stale transition: the order is already there or further on
            log.info("%s: status %s already recorded or superseded", update.order_id, update.status)
        await faults.after_commit(RECORD_ORDER_STATUS, update.order_id)
        return {"applied": applied}

    return {RECORD_ORDER_STATUS: record_order_status}


def register(runtime: WorkflowRuntime, settings: Settings) -> None:
    runtime.register_workflow(order_saga, name=ORDER_SAGA)
    runtime.register_workflow(resolve_order, name=RESOLVE_ORDER)
    runtime.register_workflow(wake_child, name=WAKE_CHILD)
    register_activities(runtime, settings, ACTIVITIES, build_activities)
