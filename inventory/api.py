"""HTTP handlers of inventory (thin: they call service.py; errors become problem details)."""

from __future__ import annotations

import msgspec
from litestar import get
from litestar.di import NamedDependency
from litestar.params import FromPath

from common.db import Database
from common.problems import found, problems
from inventory import service


class Product(msgspec.Struct):
    sku: str
    name: str
    price_cents: int
    available: int


class ReservedItem(msgspec.Struct):
    sku: str
    quantity: int


class Reservation(msgspec.Struct):
    order_id: str
    status: str
    items: list[ReservedItem]


@get("/products", operation_id="listProducts")
async def get_products(db: NamedDependency[Database]) -> list[Product]:
    return msgspec.convert(await service.list_products(db), list[Product])


@get("/reservations/{order_id:str}", operation_id="getReservation", responses=problems(404))
async def get_reservation(db: NamedDependency[Database], order_id: FromPath[str]) -> Reservation:
    return found(await service.reservation_view(db, order_id), Reservation, f"no reservation for order {order_id!r}")
