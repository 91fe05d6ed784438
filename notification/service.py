"""Notification use cases: send (record) a message once per key, and list an order's messages."""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import insert

from common.contracts import NotifyInput, NotifyResult
from common.db import Database
from common.fastdb import Connection
from common.idempotency import run_once
from notification import domain
from notification.tables import notifications, processed_requests


async def notify(db: Database, request: NotifyInput) -> NotifyResult:
    domain.check(request)
    return await run_once(db, processed_requests, request, lambda session: _send(session, request), NotifyResult)


async def _send(session: Connection, request: NotifyInput) -> dict[str, Any]:
    # There is no mail server: "sent" means recorded, in the same transaction as the idempotency record.
    # A message of this kind already went to this order's customer (under another key): not sent again.
    sent = await session.execute(
        insert(notifications)
        .values(
            idempotency_key=request.idempotency_key,
            order_id=request.order_id,
            kind=request.kind,
            channel=domain.CHANNEL,
            status="sent",
            recipient=request.email,
            detail=request.detail,
        )
        .on_conflict_do_nothing(index_elements=["order_id", "kind"])
        .returning(notifications.c.id)
    )
    if sent.first() is None:
        return NotifyResult(
            sent=False, channel=domain.CHANNEL, detail=f"{request.kind} was already sent for this order"
        ).model_dump()
    return NotifyResult(
        sent=True, channel=domain.CHANNEL, detail=f"{request.kind} sent to {request.email}"
    ).model_dump()


async def list_for_order(db: Database, order_id: str) -> list[dict[str, Any]]:
    async with db.session() as session:
        rows = await session.execute(
            sa.select(notifications).where(notifications.c.order_id == order_id).order_by(notifications.c.id)
        )
        return [
            {
                "order_id": r.order_id,
                "kind": r.kind,
                "channel": r.channel,
                "status": r.status,
                "created_at": r.created_at,
                "message": r.detail,
            }
            for r in rows
        ]
