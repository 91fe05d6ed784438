"""HTTP handlers of notification (thin: they call service.py; errors become problem details)."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

import msgspec
from litestar import get
from litestar.di import NamedDependency
from litestar.params import QueryParameter

from common.db import Database
from common.problems import problems
from notification import service


class Notification(msgspec.Struct):
    order_id: str
    kind: str
    channel: str
    status: str
    created_at: datetime
    message: str | None = None  # what the customer was told, in words for customers


@get("/notifications", operation_id="listNotifications", responses=problems(400))
async def get_notifications(
    db: NamedDependency[Database],
    order_id: Annotated[str, QueryParameter(min_length=1, max_length=200)],
) -> list[Notification]:
    return msgspec.convert(await service.list_for_order(db, order_id), list[Notification])
