"""HTTP handlers of payment (thin: they call service.py; errors become problem details)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

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


class Custody(msgspec.Struct):
    ok: bool
    checks: list[str]
    reason: str | None = None


class ReviewView(msgspec.Struct):
    """An order's risk review as payment recorded it: approve, reject or review (a person decides), and why."""

    order_id: str
    customer_id: str
    amount_cents: int
    decision: str
    reason: str | None
    facts: dict[str, Any]
    custody: Custody
    created_at: datetime


@get("/reviews/{order_id:str}", operation_id="getRiskReview", responses=problems(404))
async def get_review(db: NamedDependency[Database], order_id: FromPath[str]) -> ReviewView:
    return found(await service.review_view(db, order_id), ReviewView, f"no risk review of order {order_id!r}")
