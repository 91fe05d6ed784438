"""HTTP handlers of payment (thin: they call service.py; errors become problem details)."""

from __future__ import annotations

from datetime import datetime

import msgspec
from litestar import get
from litestar.di import NamedDependency
from litestar.params import FromPath

from common.db import Database
from common.problems import found, problems
from payment import service


class LedgerEntry(msgspec.Struct):
    kind: str
    amount_cents: int
    created_at: datetime


class PaymentView(msgspec.Struct):
    order_id: str
    status: str
    payment_id: str | None
    charged_cents: int
    refunded_cents: int
    entries: list[LedgerEntry]


@get("/payments/{order_id:str}", operation_id="getPayment", responses=problems(404))
async def get_payment(db: NamedDependency[Database], order_id: FromPath[str]) -> PaymentView:
    return found(await service.payment_view(db, order_id), PaymentView, f"no payment for order {order_id!r}")
