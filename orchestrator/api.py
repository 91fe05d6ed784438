"""HTTP handlers of the order-api (thin: they validate the shape of a request and call service.py).

Bad input is rejected here, before anything is stored or started; errors leave as RFC 9457 problem details,
the use cases' domain errors through ``PROBLEMS``, the one place they are mapped to HTTP.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal, TypeVar

import msgspec
from litestar import Controller, Request, Response, get, post
from litestar.di import NamedDependency
from litestar.params import FromPath, FromQuery, JSONBody, QueryParameter
from litestar.status_codes import HTTP_200_OK, HTTP_202_ACCEPTED
from msgspec import Meta

from common.contracts import Address, Item
from common.problems import bad_request, problem
from orchestrator.domain import (ORDER_ID, TERMINAL, InvalidListing, NewOrder, OrderConflict, OrderError,
                                 OrderNotFound, WorkflowUnavailable)
from orchestrator.domain import OrderPage as OrderPageValue
from orchestrator.domain import OrderView as OrderViewValue
from orchestrator.service import Orders

T = TypeVar("T")
Text = Annotated[str, Meta(min_length=1, max_length=200)]
Sku = Annotated[str, Meta(min_length=1, max_length=64)]
OrderId = Annotated[str, Meta(pattern=ORDER_ID.pattern)]
Email = Annotated[str, Meta(pattern=r"^[^@\s]+@[^@\s]+\.[^@\s]+$", max_length=254)]


class ItemIn(msgspec.Struct, forbid_unknown_fields=True):
    sku: Sku
    quantity: Annotated[int, Meta(ge=1, le=10_000)]


class PaymentIn(msgspec.Struct, forbid_unknown_fields=True):
    method: Literal["card"]
    token: Annotated[str, Meta(min_length=1, max_length=256)]


class AddressIn(msgspec.Struct, forbid_unknown_fields=True):
    name: Text
    line1: Text
    city: Text
    postal_code: Annotated[str, Meta(min_length=1, max_length=20)]
    country: Annotated[str, Meta(min_length=2, max_length=56)]


class OrderRequest(msgspec.Struct, forbid_unknown_fields=True):
    customer_id: Annotated[str, Meta(min_length=1, max_length=64)]
    email: Email
    items: Annotated[list[ItemIn], Meta(min_length=1, max_length=50)]
    payment: PaymentIn
    shipping_address: AddressIn
    order_id: OrderId | None = None  # generated when missing; the saga's instance ID


class Failure(msgspec.Struct):
    step: str
    reason: str


class Step(msgspec.Struct, omit_defaults=True):
    name: str
    outcome: str
    app: str | None = None
    attempts: int | None = None
    reason: str | None = None
    started_at: str | None = None
    finished_at: str | None = None


class Compensation(msgspec.Struct, omit_defaults=True):
    name: str
    outcome: str  # pending, undone, nothing_to_undo, failed
    attempts: int | None = None
    reason: str | None = None


class OrderView(msgspec.Struct, omit_defaults=True):
    order_id: str
    status: str
    customer_id: str
    email: str
    total_cents: int | None
    items: list[ItemIn]
    steps: list[Step]
    compensations: list[Compensation]
    failure: Failure | None
    created_at: str
    updated_at: str
    warnings: list[str] | None = None
    workflow: dict[str, Any] | None = None  # only when the workflow itself stopped (FAILED, TERMINATED, ...)
    cancel_requested: bool | None = None


class OrderPage(msgspec.Struct):
    items: list[OrderView]
    next_cursor: str | None


class CancelRequest(msgspec.Struct, forbid_unknown_fields=True):
    reason: Annotated[str, Meta(max_length=200)] | None = None


class OrderController(Controller):
    path = "/orders"
    tags = ["orders"]

    @post("/", status_code=HTTP_202_ACCEPTED)
    async def submit(self, request: Request, orders: NamedDependency[Orders], data: JSONBody[OrderRequest],
                     wait: FromQuery[bool] = False) -> Response[OrderView]:
        """Accept an order and start its saga (202). ``?wait=true`` waits, bounded, for the outcome (200).
        The same order_id with the same body returns the existing order; with another body it is a 409."""
        data = await _strictly(request, OrderRequest)
        skus = [item.sku for item in data.items]
        if len(set(skus)) != len(skus):
            raise bad_request("each sku may appear once in items; add up the quantities instead")
        submitted = await orders.submit(new_order(data), wait=wait)
        return _order_response(submitted.order)

    @get("/")
    async def list_orders(
        self,
        orders: NamedDependency[Orders],
        status: FromQuery[str | None] = None,
        limit: Annotated[int, QueryParameter(ge=1, le=100)] = 20,
        cursor: FromQuery[str | None] = None,
    ) -> OrderPage:
        """Orders, newest first. Pass ``next_cursor`` back as ``cursor`` for the next page."""
        return _page(await orders.list(status=status, limit=limit, cursor=cursor))

    @get("/{order_id:str}")
    async def get_order(self, orders: NamedDependency[Orders], order_id: FromPath[str]) -> OrderView:
        """The order, its saga's steps and compensations, and why it failed if it did."""
        return _view(await orders.view(order_id))

    @post("/{order_id:str}/cancel", status_code=HTTP_202_ACCEPTED)
    async def cancel(self, orders: NamedDependency[Orders], order_id: FromPath[str],
                     data: JSONBody[CancelRequest | None] = None) -> OrderView:
        """Ask a running saga to stop and undo what it did (202); 409 when the order already finished."""
        return _view(await orders.cancel(order_id, data.reason if data else None))


async def _strictly(request: Request, model: type[T]) -> T:
    """Litestar converts bodies leniently ("2" passes as 2); money and quantities must not guess."""
    try:
        return msgspec.convert(await request.json(), model, strict=True)
    except msgspec.ValidationError as err:
        message, _, path = str(err).rpartition(" - at `$")
        key = path.rstrip("`").lstrip(".") if path else "data"
        raise bad_request(f"Validation failed for {request.method} {request.url.path}",
                          errors=[{"message": message or str(err), "key": key, "source": "body"}]) from err


def new_order(data: OrderRequest) -> NewOrder:
    return NewOrder(
        customer_id=data.customer_id, email=data.email,
        items=tuple(Item(sku=i.sku, quantity=i.quantity) for i in data.items),
        payment_method=data.payment.method, payment_token=data.payment.token,
        shipping_address=Address(**msgspec.structs.asdict(data.shipping_address)), order_id=data.order_id,
    )


def _view(order: OrderViewValue) -> OrderView:
    return msgspec.convert(order, OrderView, from_attributes=True)


def _page(page: OrderPageValue) -> OrderPage:
    return OrderPage(items=[_view(o) for o in page.items], next_cursor=page.next_cursor)


def _order_response(order: OrderViewValue) -> Response[OrderView]:
    status = HTTP_200_OK if order.status in TERMINAL else HTTP_202_ACCEPTED
    return Response(_view(order), status_code=status, headers={"Location": f"/orders/{order.order_id}"})


def _problem(status: int):
    return lambda err: problem(status, err.detail, **err.extra)


# The use cases' refusals as HTTP: spread into problem_config(errors=...) by the app.
PROBLEMS: dict[type[OrderError], Any] = {
    OrderNotFound: _problem(404),
    InvalidListing: _problem(400),
    OrderConflict: _problem(409),
    WorkflowUnavailable: _problem(503),
}
