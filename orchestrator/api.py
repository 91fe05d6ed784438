"""HTTP handlers of the order-api (thin: they validate the shape of a request and call service.py).

Bad input is rejected here, before anything is stored or started; errors leave as RFC 9457 problem details,
the use cases' domain errors through ``PROBLEMS``, the one place they are mapped to HTTP.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated, Any, Literal, TypeVar

import msgspec
from litestar import Controller, Request, Response, get, post
from litestar.connection import ASGIConnection
from litestar.di import NamedDependency
from litestar.handlers.base import BaseRouteHandler
from litestar.openapi.datastructures import ResponseSpec
from litestar.params import FromPath, FromQuery, JSONBody, QueryParameter
from litestar.plugins.problem_details import ProblemDetailsException
from litestar.status_codes import HTTP_200_OK, HTTP_202_ACCEPTED
from msgspec import Meta

from common.contracts import Address, Item
from common.fault_api import local_only
from common.problems import bad_request, problem, problems
from orchestrator.domain import (
    ORDER_ID,
    TERMINAL,
    InvalidListing,
    NewOrder,
    OrderConflict,
    OrderError,
    OrderNotFound,
    WorkflowUnavailable,
)
from orchestrator.service import Orders
from orchestrator.views import Order, OrderListing

T = TypeVar("T")
# Text holds no NUL (PostgreSQL text cannot), said as a pattern so that the OpenAPI document says it too.
NO_NUL = r"^[^\x00]*$"
Text = Annotated[str, Meta(min_length=1, max_length=200, pattern=NO_NUL)]
Sku = Annotated[str, Meta(min_length=1, max_length=64, pattern=NO_NUL)]
OrderId = Annotated[str, Meta(pattern=ORDER_ID.pattern)]
# Explicit classes, not \s: Python's and JSON Schema's (ECMA) \s differ on control characters.
Email = Annotated[str, Meta(pattern=r"^[^@\x00-\x20\x7f]+@[^@\x00-\x20\x7f]+\.[^@\x00-\x20\x7f]+$", max_length=254)]
StatusName = Literal[
    "PENDING",
    "RUNNING",
    "AWAITING_APPROVAL",
    "COMPLETED",
    "COMPENSATED",
    "REJECTED",
    "CANCELLED",
    "COMPENSATION_FAILED",
    "WORKFLOW_FAILED",
]


class ItemIn(msgspec.Struct, forbid_unknown_fields=True):
    sku: Sku
    quantity: Annotated[int, Meta(ge=1, le=10_000)]


class PaymentIn(msgspec.Struct, forbid_unknown_fields=True):
    method: Literal["card"]
    token: Annotated[str, Meta(min_length=1, max_length=256, pattern=NO_NUL)]


class AddressIn(msgspec.Struct, forbid_unknown_fields=True):
    name: Text
    line1: Text
    city: Text
    postal_code: Annotated[str, Meta(min_length=1, max_length=20, pattern=NO_NUL)]
    country: Annotated[str, Meta(min_length=2, max_length=56, pattern=NO_NUL)]


class OrderRequest(msgspec.Struct, forbid_unknown_fields=True):
    customer_id: Annotated[str, Meta(min_length=1, max_length=64, pattern=NO_NUL)]
    email: Email
    items: Annotated[list[ItemIn], Meta(min_length=1, max_length=50)]
    payment: PaymentIn
    shipping_address: AddressIn
    order_id: OrderId | None = None  # generated when missing; the saga's instance ID


class Failure(msgspec.Struct):
    step: str
    reason: str


class Custody(msgspec.Struct):
    """The chain-of-custody check of a risk review: what the saga's propagated history showed, and why it does not
    hold when ``ok`` is false."""

    ok: bool
    checks: list[str]
    reason: str | None = None


class ChildStep(msgspec.Struct, omit_defaults=True):
    """A step of a child workflow (the risk review's own), as it reported it."""

    name: str
    outcome: str
    app: str | None = None
    attempts: int | None = None
    reason: str | None = None
    started_at: str | None = None
    finished_at: str | None = None


class Step(ChildStep, omit_defaults=True):
    """A step of the saga: an activity (outcome running, succeeded, refused or failed), a child workflow, or a wait
    (waiting, then succeeded, refused or cancelled)."""

    kind: Literal["workflow", "wait"] | None = None  # absent: an activity; a child workflow; a wait for a person
    instance_id: str | None = None  # a child workflow's own instance ID
    decision: str | None = None  # a risk review's: approve, reject or review (a person decides)
    facts: dict[str, Any] | None = None  # what the risk review weighed
    custody: Custody | None = None  # the risk review's check of what it was asked, against the saga's history
    steps: list[ChildStep] | None = None  # a child workflow's own steps
    deadline: str | None = None  # a wait's: when no decision becomes a rejection


class Compensation(msgspec.Struct, omit_defaults=True):
    name: str
    outcome: str  # pending, undone, nothing_to_undo, failed
    attempts: int | None = None
    reason: str | None = None


class Resolution(msgspec.Struct, omit_defaults=True):
    """An operator's resolution of a WORKFLOW_FAILED order: every undo run, and how the order ended."""

    status: str  # RUNNING while the undos run; then COMPENSATED, or COMPENSATION_FAILED
    compensations: list[Compensation]
    resolved_at: str | None = None


class Approval(msgspec.Struct, omit_defaults=True):
    """A person's decision on an order the risk review left to them: why it was asked (``reason``), by when
    (``deadline``), and how it went (``state``: waiting, approved, rejected, timed_out or cancelled)."""

    state: str
    requested_at: str
    deadline: str
    reason: str | None = None
    decided_at: str | None = None
    reviewer: str | None = None
    note: str | None = None


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
    resolution: Resolution | None = None  # only once an operator asked to resolve a WORKFLOW_FAILED order
    approval: Approval | None = None  # only for an order the risk review left to a person
    decision_requested: Literal["approve", "reject"] | None = None  # the answer to POST .../approve or .../reject


class HistoryEvent(msgspec.Struct, omit_defaults=True):
    """One event of an order's workflow history, as the engine recorded it (inputs left out)."""

    event_id: int
    type: str  # ExecutionStarted, TaskScheduled, TaskCompleted, TaskFailed, TimerCreated, TimerFired, EventRaised, ...
    timestamp: str
    name: str | None = None  # the activity, timer, event or workflow
    task_id: int | None = None  # a TaskScheduled's event_id, repeated by its TaskCompleted or TaskFailed (and so
    # for a ChildWorkflowInstanceCreated and its ChildWorkflowInstanceCompleted or ChildWorkflowInstanceFailed)
    app: str | None = None  # the app an activity or a child workflow was routed to
    instance_id: str | None = None  # a child workflow's own instance ID
    fire_at: str | None = None  # timers
    timer_origin: str | None = None
    status: str | None = None  # ExecutionCompleted
    result: str | None = None  # JSON, cut to a summary
    failure: str | None = None
    trace_id: str | None = None  # ExecutionStarted, when traces are on: the trace the saga runs in


class OrderPage(msgspec.Struct):
    items: list[OrderView]
    next_cursor: str | None


class CancelRequest(msgspec.Struct, forbid_unknown_fields=True):
    reason: Annotated[str, Meta(max_length=200, pattern=NO_NUL)] | None = None


class DecisionRequest(msgspec.Struct, forbid_unknown_fields=True):
    """Who decides, and why (both optional; kept with the order)."""

    reviewer: Annotated[str, Meta(min_length=1, max_length=100, pattern=NO_NUL)] | None = None
    note: Annotated[str, Meta(max_length=200, pattern=NO_NUL)] | None = None


_local_operators = local_only("the operator endpoints", "OPERATOR_ALLOW_REMOTE")


def operators_only(connection: ASGIConnection[Any, Any, Any, Any], handler: BaseRouteHandler) -> None:
    """A guard: operator endpoints answer clients on this machine unless the app was told otherwise
    (``app.state.operator_allow_remote``, from OPERATOR_ALLOW_REMOTE)."""
    if not connection.app.state.get("operator_allow_remote", False):
        _local_operators(connection, handler)


def _order_action(action: str, *statuses: int, **options: Any) -> post:
    """``POST /orders/{order_id}/<action>`` (cancel, resolve, approve, reject): 202 with the order, the problems
    ``statuses`` documented, operation ``<action>Order``."""
    return post(
        f"/{{order_id:str}}/{action}",
        status_code=HTTP_202_ACCEPTED,
        operation_id=f"{action}Order",
        responses=problems(*statuses),
        **options,
    )


class OrderController(Controller):
    path = "/orders"
    tags = ("orders",)

    @post(
        "/",
        status_code=HTTP_202_ACCEPTED,
        operation_id="submitOrder",
        responses={
            HTTP_200_OK: ResponseSpec(OrderView, description="?wait=true and the order finished"),
            **problems(400, 409, 413, 503),
        },
    )
    async def submit(
        self,
        request: Request[Any, Any, Any],
        orders: NamedDependency[Orders],
        data: JSONBody[OrderRequest],
        wait: FromQuery[bool] = False,
    ) -> Response[OrderView]:
        """Accept an order and start its saga (202). ``?wait=true`` waits, bounded, for the outcome (200).
        The same order_id with the same body returns the existing order; with another body it is a 409.
        Each sku may appear once in ``items`` (a 400 otherwise; JSON Schema cannot say it)."""
        data = await _strictly(request, OrderRequest)
        skus = [item.sku for item in data.items]
        if len(set(skus)) != len(skus):
            raise bad_request("each sku may appear once in items; add up the quantities instead")
        submitted = await orders.submit(new_order(data), wait=wait)
        return _order_response(submitted.order)

    @get("/", operation_id="listOrders", responses=problems(400))
    async def list_orders(
        self,
        orders: NamedDependency[Orders],
        status: FromQuery[StatusName | None] = None,
        limit: Annotated[int, QueryParameter(ge=1, le=100)] = 20,
        cursor: Annotated[str | None, QueryParameter(pattern=r"^[1-9][0-9]{0,17}$")] = None,
    ) -> OrderPage:
        """Orders, newest first. Pass ``next_cursor`` back as ``cursor`` for the next page."""
        return _page(await orders.list(status=status, limit=limit, cursor=cursor))

    @get("/{order_id:str}", operation_id="getOrder", responses=problems(404))
    async def get_order(self, orders: NamedDependency[Orders], order_id: FromPath[str]) -> OrderView:
        """The order, its saga's steps and compensations, and why it failed if it did."""
        return _view(await orders.view(order_id))

    @get("/{order_id:str}/history", operation_id="getOrderHistory", responses=problems(404, 503))
    async def get_history(self, orders: NamedDependency[Orders], order_id: FromPath[str]) -> list[HistoryEvent]:
        """The events of the order's workflow, oldest first: each activity scheduled and how it ended (a retry is
        a timer, then the activity scheduled again), timers, events raised. 404 when there is no such order or
        its workflow is gone (purged); 503 when the workflow engine cannot be reached."""
        return msgspec.convert(await orders.history(order_id), list[HistoryEvent])

    @_order_action("cancel", 400, 404, 409, 413, 503)
    async def cancel(
        self, orders: NamedDependency[Orders], order_id: FromPath[str], data: JSONBody[CancelRequest | None] = None
    ) -> OrderView:
        """Ask a running saga to stop and undo what it did (202); 409 when the order already finished."""
        return _view(await orders.cancel(order_id, data.reason if data else None))

    @_order_action("resolve", 403, 404, 409, 503, guards=[operators_only])
    async def resolve(self, orders: NamedDependency[Orders], order_id: FromPath[str]) -> OrderView:
        """For an operator: an order whose saga workflow failed outside the saga (``WORKFLOW_FAILED``: a tampered
        history, a non-determinism error, a terminate) gets every undo run, each idempotent, and ends COMPENSATED
        (or COMPENSATION_FAILED, naming the undo that failed): 202, the order with its ``resolution``. Asking again
        while it runs changes nothing; 409 for any other order. Clients on this machine only, unless
        OPERATOR_ALLOW_REMOTE=true (403)."""
        return _view(await orders.resolve(order_id))

    @_order_action("approve", 400, 404, 409, 413, 503)
    async def approve(
        self, orders: NamedDependency[Orders], order_id: FromPath[str], data: JSONBody[DecisionRequest | None] = None
    ) -> OrderView:
        """Approve an order the risk review left to a person (status AWAITING_APPROVAL): its saga goes on to the
        charge (202). 409 when the order is not awaiting approval, or its deadline has passed."""
        return _view(await orders.decide(order_id, True, *_decided_by(data)))

    @_order_action("reject", 400, 404, 409, 413, 503)
    async def reject(
        self, orders: NamedDependency[Orders], order_id: FromPath[str], data: JSONBody[DecisionRequest | None] = None
    ) -> OrderView:
        """Reject an order awaiting approval: its saga releases the reservation and the order ends REJECTED (202).
        409 when the order is not awaiting approval, or its deadline has passed."""
        return _view(await orders.decide(order_id, False, *_decided_by(data)))


def _decided_by(data: DecisionRequest | None) -> tuple[str | None, str | None]:
    return (data.reviewer, data.note) if data is not None else (None, None)


async def _strictly(request: Request[Any, Any, Any], model: type[T]) -> T:
    """Litestar converts bodies leniently ("2" passes as 2); money and quantities must not guess. A number with
    no fraction (``2.0``) is an integer, as JSON Schema says."""
    try:
        return msgspec.convert(_integral(await request.json()), model, strict=True)
    except msgspec.ValidationError as err:
        message, _, path = str(err).rpartition(" - at `$")
        key = path.rstrip("`").lstrip(".") if path else "data"
        raise bad_request(
            f"Validation failed for {request.method} {request.url.path}",
            errors=[{"message": message or str(err), "key": key, "source": "body"}],
        ) from err


def _integral(value: Any) -> Any:
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, list):
        return [_integral(v) for v in value]
    if isinstance(value, dict):
        return {k: _integral(v) for k, v in value.items()}
    return value


def new_order(data: OrderRequest) -> NewOrder:
    return NewOrder(
        customer_id=data.customer_id,
        email=data.email,
        items=tuple(Item(sku=i.sku, quantity=i.quantity) for i in data.items),
        payment_method=data.payment.method,
        payment_token=data.payment.token,
        shipping_address=Address(**msgspec.structs.asdict(data.shipping_address)),
        order_id=data.order_id,
    )


def _view(order: Order) -> OrderView:
    return msgspec.convert(order, OrderView, from_attributes=True)


def _page(page: OrderListing) -> OrderPage:
    return OrderPage(items=[_view(o) for o in page.items], next_cursor=page.next_cursor)


def _order_response(order: Order) -> Response[OrderView]:
    status = HTTP_200_OK if order.status in TERMINAL else HTTP_202_ACCEPTED
    return Response(_view(order), status_code=status, headers={"Location": f"/orders/{order.order_id}"})


def _problem(status: int) -> Callable[[OrderError], ProblemDetailsException]:
    return lambda err: problem(status, err.detail, **err.extra)


# The use cases' refusals as HTTP: spread into problem_config(errors=...) by the app.
PROBLEMS: dict[type[OrderError], Callable[[OrderError], ProblemDetailsException]] = {
    OrderNotFound: _problem(404),
    InvalidListing: _problem(400),
    OrderConflict: _problem(409),
    WorkflowUnavailable: _problem(503),
}
