"""HTTP handlers of shipping (thin: they call service.py; errors become problem details)."""

from __future__ import annotations

import msgspec
from litestar import get
from litestar.di import NamedDependency
from litestar.params import FromPath

from common.db import Database
from common.problems import found, problems
from shipping import service


class Shipment(msgspec.Struct):
    order_id: str
    status: str
    tracking_number: str | None
    country: str | None


@get("/shipments/{order_id:str}", operation_id="getShipment", responses=problems(404))
async def get_shipment(db: NamedDependency[Database], order_id: FromPath[str]) -> Shipment:
    return found(await service.shipment_view(db, order_id), Shipment, f"no shipment for order {order_id!r}")
