"""order-api on a real PostgreSQL: idempotent submission (also under concurrent duplicates), the status record,
keyset pagination, 404/409 problems, PENDING orders left by a crash started by a repeated POST or at start-up, and
a saga workflow that failed outside the saga: WORKFLOW_FAILED, the operator's resolve, the reconcile sweep.

Each test gets a fresh, migrated database. Only the workflow client is a stand-in (see InMemoryWorkflowClient).
"""

from __future__ import annotations

import asyncio
import copy
import json
import uuid
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import grpc
import httpx
import msgspec
import pytest
import pytest_asyncio
import sqlalchemy as sa
from dapr.ext.workflow import WorkflowStatus
from litestar import Litestar
from litestar.testing import AsyncTestClient

from common.contracts import ORDER_API, ORDER_SAGA, SagaRetry
from common.db import Database
from common.faults import FaultInjector
from common.settings import Settings
from orchestrator import repository
from orchestrator.activities import ACTIVITIES, build_activities
from orchestrator.api import OrderRequest, new_order
from orchestrator.app import create_app
from orchestrator.domain import (
    APPROVAL_EVENT,
    AWAITING_APPROVAL,
    CANCEL_EVENT,
    COMPENSATED,
    COMPLETED,
    PENDING,
    RECORD_ORDER_STATUS,
    REJECTED,
    RUNNING,
    NewOrder,
    OrderStatusUpdate,
)
from orchestrator.saga_client import SagaClient
from orchestrator.service import Orders
from orchestrator.settings import ApiSettings
from orchestrator.sweep import Sweep
from orchestrator.tables import orders

BODY = {
    "customer_id": "c-1",
    "email": "ada@example.com",
    "items": [{"sku": "SKU-MUG", "quantity": 2}, {"sku": "SKU-TEE", "quantity": 1}],
    "payment": {"method": "card", "token": "tok_visa"},
    "shipping_address": {"name": "Ada", "line1": "1 Main St", "city": "London", "postal_code": "N1", "country": "GB"},
}
RETRY = SagaRetry(first_interval_ms=100, max_attempts=3, backoff=1.5, max_interval_ms=400)
FINISHED = {WorkflowStatus.COMPLETED, WorkflowStatus.FAILED, WorkflowStatus.TERMINATED}


def as_new_order(body: dict) -> NewOrder:
    """A REST body as the use case receives it once the API has checked it."""
    return new_order(msgspec.convert(body, OrderRequest))


# --- the workflow client stand-in ----------------------------------------------------------------------


class StandInRpcError(grpc.RpcError):
    """What the SDK raises for a gRPC error status: ``code()`` and ``details()``."""

    def __init__(self, code: grpc.StatusCode, details: str) -> None:
        super().__init__(details)
        self._code, self._details = code, details

    def code(self) -> grpc.StatusCode:
        return self._code

    def details(self) -> str:
        return self._details


class SimulatedCrash(Exception):
    """Raised where the process would have died: after the order's row committed, before its saga was scheduled."""


@dataclass
class StandInState:
    """The attributes of the SDK's WorkflowState that orchestrator.saga_client reads."""

    runtime_status: WorkflowStatus
    serialized_custom_status: str | None = None
    serialized_output: str | None = None
    failure_details: Any = None


@dataclass
class Instance:
    name: str
    input: Any
    state: StandInState


class InMemoryWorkflowClient:
    """A stand-in for the workflow client only (the SDK's async ``DaprWorkflowClient``): the real one needs a
    sidecar, and tests/e2e cover that path. It keeps instances in memory and runs nothing; like the sidecar it
    refuses to schedule over an active instance ID (ALREADY_EXISTS) but reuses a finished one. Every call
    yields to the event loop for a moment, as a gRPC round trip does, so concurrent requests interleave."""

    def __init__(self) -> None:
        self.instances: dict[str, Instance] = {}
        self.scheduled: list[str] = []  # every schedule call, in order, refused ones included
        self.events: list[tuple[str, str, Any]] = []
        self.terminated: list[str] = []
        self.unavailable = False
        self.crash_on_schedule = False
        self.unreadable: set[str] = set()  # instances whose state daprd refuses to load (a failed signature check)

    async def schedule_new_workflow(
        self,
        workflow: str,
        *,
        input: Any = None,
        instance_id: str | None = None,
        start_at: Any = None,
        reuse_id_policy: Any = None,
    ) -> str:
        await self._round_trip()
        if self.crash_on_schedule:
            raise SimulatedCrash(instance_id)
        assert instance_id is not None  # the order-api always names the instance after the order
        self.scheduled.append(instance_id)
        current = self.instances.get(instance_id)
        if current is not None and current.state.runtime_status not in FINISHED:
            raise StandInRpcError(grpc.StatusCode.ALREADY_EXISTS, f"workflow instance {instance_id} already exists")
        self.instances[instance_id] = Instance(workflow, input, StandInState(WorkflowStatus.RUNNING))
        return instance_id

    async def get_workflow_state(self, instance_id: str, *, fetch_payloads: bool = True) -> StandInState | None:
        await self._round_trip()
        if instance_id in self.unreadable:
            raise StandInRpcError(
                grpc.StatusCode.UNKNOWN, f"workflow history signature verification failed for '{instance_id}'"
            )
        instance = self.instances.get(instance_id)
        return instance.state if instance is not None else None

    async def wait_for_workflow_completion(
        self, instance_id: str, *, fetch_payloads: bool = True, timeout_in_seconds: int = 0
    ) -> StandInState | None:
        await self._round_trip()
        if instance_id in self.unreadable:
            raise StandInRpcError(grpc.StatusCode.UNKNOWN, f"workflow state is invalid for '{instance_id}'")
        instance = self.instances.get(instance_id)
        if instance is not None and instance.state.runtime_status not in FINISHED:
            # Nothing runs here: answer as if the timeout had passed, after a moment (the order-api's watchers wait
            # again at once; a real wait lasts minutes).
            await asyncio.sleep(0.02)
            raise TimeoutError(instance_id)
        return instance.state if instance is not None else None

    async def raise_workflow_event(self, instance_id: str, event_name: str, *, data: Any = None) -> None:
        await self._round_trip()
        self.events.append((instance_id, event_name, data))

    async def terminate_workflow(self, instance_id: str, *, output: Any = None, recursive: bool = True) -> None:
        await self._round_trip()
        self.terminated.append(instance_id)
        instance = self.instances[instance_id]
        instance.state = StandInState(WorkflowStatus.TERMINATED, instance.state.serialized_custom_status)

    def finish(self, instance_id: str, output: dict[str, Any]) -> None:
        """The saga returned ``output`` (its summary), as the sidecar would report it."""
        self.instances[instance_id].state = StandInState(WorkflowStatus.COMPLETED, serialized_output=json.dumps(output))

    async def _round_trip(self) -> None:
        if self.unavailable:
            raise StandInRpcError(grpc.StatusCode.UNAVAILABLE, "failed to connect to all addresses")
        await asyncio.sleep(0.005)


# --- fixtures and helpers ------------------------------------------------------------------------------


@pytest_asyncio.fixture
async def db_url(database_factory) -> str:
    return await database_factory(ORDER_API, "orchestrator:migrations")


@pytest_asyncio.fixture
async def db(db_url: str) -> Database:
    database = Database(db_url)
    yield database
    await database.dispose()


@pytest.fixture
def sidecar() -> InMemoryWorkflowClient:
    return InMemoryWorkflowClient()


def order_api(db_url: str, sidecar: InMemoryWorkflowClient) -> Litestar:
    settings = Settings(app_id=ORDER_API, database_url=db_url, retry=RETRY)
    return create_app(settings, sagas=SagaClient(lambda: sidecar))


@pytest_asyncio.fixture
async def api(db_url: str, sidecar: InMemoryWorkflowClient):
    async with AsyncTestClient(app=order_api(db_url, sidecar)) as client:
        # AsyncTestClient runs the app on its own thread's loop: wait there for the start-up sweep to finish.
        client.blocking_portal.call(start_up_sweep_finished)
        yield client


async def start_up_sweep_finished() -> None:
    """Wait for the start-up sweep that create_app's on_startup launched in this event loop."""
    await asyncio.gather(*(t for t in asyncio.all_tasks() if t.get_coro().__qualname__ == "_resume_pending"))


@pytest.fixture
def record_order_status(db: Database):
    return build_activities(db, FaultInjector(db, ACTIVITIES, enabled=False))[RECORD_ORDER_STATUS]


def new_body(**changes: Any) -> dict[str, Any]:
    return copy.deepcopy(BODY) | {"order_id": f"o-{uuid.uuid4().hex[:10]}"} | changes


async def rows(db: Database) -> list[dict[str, Any]]:
    async with db.session() as session:
        return [dict(r._mapping) for r in await session.execute(sa.select(orders).order_by(orders.c.seq))]


async def row(db: Database, order_id: str) -> dict[str, Any] | None:
    return next((r for r in await rows(db) if r["order_id"] == order_id), None)


async def store_then_crash(db: Database, body: dict[str, Any]) -> None:
    """Submit through the real use case, with the process 'dying' between the insert and the schedule."""
    dying = InMemoryWorkflowClient()
    dying.crash_on_schedule = True
    with pytest.raises(SimulatedCrash):
        await Orders(db, SagaClient(lambda: dying), SagaRetry(), 1.0).submit(as_new_order(body), wait=False)


async def swept(db: Database, sidecar: Any, count: int, **sweep: Any) -> tuple[Sweep, list[dict[str, Any]]]:
    """The order-api's sweep over ``count`` orders submitted without waiting (their bodies, in order)."""
    orders_ = Orders(db, SagaClient(lambda: sidecar), RETRY, 1.0)
    bodies = [new_body() for _ in range(count)]
    for body in bodies:
        await orders_.submit(as_new_order(body), wait=False)
    return Sweep(orders_, **sweep), bodies


def assert_problem(response: httpx.Response, status: int) -> dict[str, Any]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/problem+json")
    problem = response.json()
    assert problem["status"] == status and problem["title"] and problem["detail"]
    return problem


def summary(status: str, **extra: Any) -> dict[str, Any]:
    return {
        "status": status,
        "failure": None,
        "total_cents": 4700,
        "steps": [{"name": "validate_order", "app": "inventory", "outcome": "succeeded"}],
        "compensations": [],
        **extra,
    }


# --- idempotent submission -----------------------------------------------------------------------------


async def test_a_repeated_submission_returns_the_same_order_with_one_row_and_one_scheduled_saga(api, db, sidecar):
    body = new_body()
    first = await api.post("/orders", json=body)
    reordered = dict(reversed(list(copy.deepcopy(body).items())))  # same body, keys in another order
    again = await api.post("/orders", json=reordered)

    assert first.status_code == again.status_code == 202
    assert first.headers["location"] == again.headers["location"] == f"/orders/{body['order_id']}"
    assert again.json() == first.json()
    assert [r["order_id"] for r in await rows(db)] == [body["order_id"]]
    assert sidecar.scheduled == [body["order_id"]]
    saga_input = sidecar.instances[body["order_id"]].input
    assert sidecar.instances[body["order_id"]].name == ORDER_SAGA
    assert (saga_input.order_id, saga_input.payment_token, saga_input.retry) == (body["order_id"], "tok_visa", RETRY)


async def test_concurrent_duplicate_submissions_store_one_row_and_schedule_the_saga_once(db_url, db, sidecar):
    # AsyncTestClient serves one request at a time (each one blocks on its portal); httpx's ASGI transport runs
    # the app in this loop, so these requests really are in flight together.
    app = order_api(db_url, sidecar)
    in_flight = peak = 0

    async def counting(scope, receive, send):
        nonlocal in_flight, peak
        in_flight += 1
        peak = max(peak, in_flight)
        try:
            await app(scope, receive, send)
        finally:
            in_flight -= 1

    body = new_body()
    async with (
        app.lifespan(),
        httpx.AsyncClient(transport=httpx.ASGITransport(app=counting), base_url="http://order-api") as client,
    ):
        await start_up_sweep_finished()
        responses = await asyncio.gather(*(client.post("/orders", json=body) for _ in range(4)))

    assert peak == 4
    assert [r.status_code for r in responses] == [202] * 4
    assert len({(r.json()["order_id"], r.json()["created_at"]) for r in responses}) == 1
    assert [r["order_id"] for r in await rows(db)] == [body["order_id"]]
    assert sidecar.scheduled == [body["order_id"]]


async def test_the_same_order_id_with_a_different_body_is_a_409_problem_and_leaves_the_row_unchanged(api, db, sidecar):
    body = new_body()
    assert (await api.post("/orders", json=body)).status_code == 202
    before = await row(db, body["order_id"])

    changed = copy.deepcopy(body)
    changed["items"][0]["quantity"] = 3
    problem = assert_problem(await api.post("/orders", json=changed), 409)

    assert problem["order_id"] == body["order_id"] and "different request body" in problem["detail"]
    assert await rows(db) == [before]
    assert sidecar.scheduled == [body["order_id"]]


MALFORMED = {
    "a quantity as a string": lambda b: b["items"][0].update(quantity="2"),
    "a zero quantity": lambda b: b["items"][0].update(quantity=0),
    "an unknown field": lambda b: b.update(coupon="FREE"),
    "a missing payment": lambda b: b.pop("payment"),
    "the same sku twice": lambda b: b["items"].append({"sku": "SKU-MUG", "quantity": 1}),
    "an order id with a slash": lambda b: b.update(order_id="o/1"),
}


async def test_malformed_bodies_are_400_problems_that_store_and_start_nothing(api, db, sidecar):
    for case, change in MALFORMED.items():
        body = new_body()
        change(body)
        assert_problem(await api.post("/orders", json=body), 400)
        assert await rows(db) == [], case
    not_json = await api.post("/orders", content=b'{"customer_id": ', headers={"content-type": "application/json"})
    assert_problem(not_json, 400)

    assert await rows(db) == [] and sidecar.scheduled == []
    assert (await api.post("/orders", json=new_body())).status_code == 202  # the same API does store good ones


# --- the record_order_status activity ------------------------------------------------------------------


async def test_record_order_status_moves_an_order_from_pending_through_running_to_its_outcome(
    api, db, ctx, record_order_status
):
    body = new_body()
    await store_then_crash(db, body)  # a PENDING row (a started saga's row is RUNNING: the order-api records it)
    order_id = body["order_id"]
    assert (await row(db, order_id))["status"] == PENDING

    assert await record_order_status(ctx, OrderStatusUpdate(order_id, RUNNING)) == {"applied": True}
    assert (await row(db, order_id))["status"] == RUNNING
    outcome = summary(COMPLETED)
    assert await record_order_status(ctx, OrderStatusUpdate(order_id, COMPLETED, None, 4700, outcome)) == {
        "applied": True
    }

    stored = await row(db, order_id)
    assert (stored["status"], stored["total_cents"], stored["failure"], stored["saga"]) == (
        COMPLETED,
        4700,
        None,
        outcome,
    )
    view = (await api.get(f"/orders/{order_id}")).json()
    assert (view["status"], view["total_cents"], view["steps"]) == (COMPLETED, 4700, outcome["steps"])


async def test_a_late_running_record_or_another_outcome_does_not_move_a_finished_order(db, ctx, record_order_status):
    body = new_body()
    await Orders(db, SagaClient(InMemoryWorkflowClient), SagaRetry(), 1.0).submit(as_new_order(body), wait=False)
    order_id = body["order_id"]
    failure = {"step": "charge", "reason": "card declined"}
    await record_order_status(ctx, OrderStatusUpdate(order_id, COMPENSATED, failure, 4700, summary(COMPENSATED)))
    finished = await row(db, order_id)

    assert await record_order_status(ctx, OrderStatusUpdate(order_id, RUNNING)) == {"applied": False}
    assert await record_order_status(ctx, OrderStatusUpdate(order_id, COMPLETED, None, 1, summary(COMPLETED))) == {
        "applied": False
    }
    assert await row(db, order_id) == finished
    assert finished["status"] == COMPENSATED and finished["failure"] == failure


async def test_a_repeated_status_record_changes_nothing(db, ctx, record_order_status):
    body = new_body()
    await Orders(db, SagaClient(InMemoryWorkflowClient), SagaRetry(), 1.0).submit(as_new_order(body), wait=False)
    order_id = body["order_id"]
    update = OrderStatusUpdate(order_id, COMPLETED, None, 4700, summary(COMPLETED))

    await record_order_status(ctx, OrderStatusUpdate(order_id, RUNNING))
    running = await row(db, order_id)
    assert await record_order_status(ctx, OrderStatusUpdate(order_id, RUNNING)) == {"applied": False}
    assert await row(db, order_id) == running

    await record_order_status(ctx, update)
    completed = await row(db, order_id)
    assert await record_order_status(ctx, update) == {"applied": False}
    assert await row(db, order_id) == completed  # updated_at included


async def test_a_status_record_for_an_unknown_order_applies_nothing(db, ctx, record_order_status):
    assert await record_order_status(ctx, OrderStatusUpdate("o-never-submitted", RUNNING)) == {"applied": False}
    assert await rows(db) == []


async def test_pending_is_not_a_status_the_saga_can_record(db, ctx, record_order_status):
    body = new_body()
    await Orders(db, SagaClient(InMemoryWorkflowClient), SagaRetry(), 1.0).submit(as_new_order(body), wait=False)
    await record_order_status(ctx, OrderStatusUpdate(body["order_id"], RUNNING))

    with pytest.raises(ValueError, match="not a status the saga records"):
        await record_order_status(ctx, OrderStatusUpdate(body["order_id"], PENDING))
    assert (await row(db, body["order_id"]))["status"] == RUNNING


async def test_the_wait_for_a_person_moves_the_row_to_awaiting_approval_and_back_and_a_late_record_never_undoes_it(
    api, db, ctx, record_order_status
):
    body = new_body()
    await Orders(db, SagaClient(InMemoryWorkflowClient), SagaRetry(), 1.0).submit(as_new_order(body), wait=False)
    order_id = body["order_id"]
    await record_order_status(ctx, OrderStatusUpdate(order_id, RUNNING))
    waiting = OrderStatusUpdate(order_id, AWAITING_APPROVAL, None, 55_000, summary(AWAITING_APPROVAL))

    assert await record_order_status(ctx, waiting) == {"applied": True}
    stored = await row(db, order_id)
    assert (stored["status"], stored["total_cents"]) == (AWAITING_APPROVAL, 55_000)
    listed = (await api.get("/orders", params={"status": AWAITING_APPROVAL})).json()["items"]
    assert [o["order_id"] for o in listed] == [order_id]
    # A late RUNNING record (the order-api's own, after the start) does not move it back.
    assert await record_order_status(ctx, OrderStatusUpdate(order_id, RUNNING)) == {"applied": False}

    assert await record_order_status(ctx, OrderStatusUpdate(order_id, RUNNING, approved=True)) == {"applied": True}
    assert (await row(db, order_id))["status"] == RUNNING
    # The AWAITING_APPROVAL record delivered again (activities run at least once) changes nothing now.
    assert await record_order_status(ctx, waiting) == {"applied": False}
    assert (await row(db, order_id))["status"] == RUNNING

    done = OrderStatusUpdate(order_id, COMPLETED, None, 55_000, summary(COMPLETED))
    assert await record_order_status(ctx, done) == {"applied": True}
    assert await record_order_status(ctx, OrderStatusUpdate(order_id, RUNNING, approved=True)) == {"applied": False}


async def test_a_rejection_while_awaiting_approval_finishes_the_order(db, ctx, record_order_status):
    body = new_body()
    await Orders(db, SagaClient(InMemoryWorkflowClient), SagaRetry(), 1.0).submit(as_new_order(body), wait=False)
    order_id = body["order_id"]
    await record_order_status(ctx, OrderStatusUpdate(order_id, AWAITING_APPROVAL))
    failure = {"step": "approval", "reason": "rejected by grace"}

    assert await record_order_status(ctx, OrderStatusUpdate(order_id, REJECTED, failure)) == {"applied": True}
    assert ((await row(db, order_id))["status"], (await row(db, order_id))["failure"]) == (REJECTED, failure)


def waiting_summary(deadline: str) -> dict[str, Any]:
    return summary(
        AWAITING_APPROVAL,
        approval={
            "state": "waiting",
            "requested_at": "2020-01-01T00:00:00+00:00",
            "deadline": deadline,
            "reason": "total 550.00 is above 500.00",
        },
    )


async def test_approving_an_order_awaiting_approval_raises_the_decision_to_its_saga(api, sidecar):
    body = new_body()
    assert (await api.post("/orders", json=body)).status_code == 202
    order_id = body["order_id"]
    live = waiting_summary("2999-01-01T00:00:00+00:00")
    sidecar.instances[order_id].state.serialized_custom_status = json.dumps(live)

    response = await api.post(f"/orders/{order_id}/approve", json={"reviewer": "grace"})

    assert response.status_code == 202, response.text
    assert (response.json()["status"], response.json()["decision_requested"]) == (AWAITING_APPROVAL, "approve")
    assert response.json()["approval"]["deadline"] == "2999-01-01T00:00:00+00:00"
    assert sidecar.events == [(order_id, APPROVAL_EVENT, {"approved": True, "reviewer": "grace"})]


async def test_a_decision_on_an_order_not_awaiting_approval_or_past_its_deadline_is_a_409_and_raises_nothing(
    api, sidecar
):
    body = new_body()
    await api.post("/orders", json=body)
    order_id = body["order_id"]

    problem = assert_problem(await api.post(f"/orders/{order_id}/reject"), 409)
    assert problem["order_status"] == RUNNING and "not awaiting approval" in problem["detail"]
    sidecar.instances[order_id].state.serialized_custom_status = json.dumps(
        waiting_summary("2020-01-02T00:00:00+00:00")
    )
    problem = assert_problem(await api.post(f"/orders/{order_id}/approve"), 409)
    assert "deadline" in problem["detail"] and "passed" in problem["detail"]
    assert_problem(await api.post("/orders/no-such-order/approve"), 404)
    assert sidecar.events == []


# --- a finished saga whose status record did not land -----------------------------------------------------


async def test_a_saga_that_finished_before_its_status_landed_is_reconciled_and_never_scheduled_again(api, db, sidecar):
    body = new_body()
    await api.post("/orders", json=body)
    sidecar.finish(body["order_id"], summary(COMPLETED))  # the sidecar reuses finished IDs: a blind schedule reruns
    assert (await row(db, body["order_id"]))["status"] == RUNNING  # recorded by the order-api when it started it

    again = await api.post("/orders", json=body)

    assert again.status_code == 200 and again.json()["status"] == COMPLETED
    assert sidecar.scheduled == [body["order_id"]]
    stored = await row(db, body["order_id"])
    assert (stored["status"], stored["total_cents"], stored["saga"]) == (COMPLETED, 4700, summary(COMPLETED))


async def test_viewing_a_finished_order_does_not_rewrite_its_row(api, db, sidecar, ctx, record_order_status):
    body = new_body()
    await api.post("/orders", json=body)
    order_id = body["order_id"]
    await record_order_status(ctx, OrderStatusUpdate(order_id, COMPLETED, None, 4700, summary(COMPLETED)))
    sidecar.finish(order_id, summary(COMPLETED))
    finished = await row(db, order_id)

    views = [(await api.get(f"/orders/{order_id}")).json() for _ in range(2)]

    assert views[0] == views[1] and views[0]["status"] == COMPLETED
    assert views[0]["updated_at"] == finished["updated_at"].isoformat()
    assert await row(db, order_id) == finished


# --- listing -------------------------------------------------------------------------------------------


async def walk(api: AsyncTestClient, query: str) -> tuple[list[str], int]:
    """Every order_id of the listing, page after page; and how many pages it took."""
    ids: list[str] = []
    cursor: str | None = None
    for pages in range(1, 100):
        page = await api.get(f"/orders?{query}" + (f"&cursor={cursor}" if cursor else ""))
        assert page.status_code == 200, page.text
        ids += [o["order_id"] for o in page.json()["items"]]
        cursor = page.json()["next_cursor"]
        if cursor is None:
            return ids, pages
    raise AssertionError("the listing never ended")


async def test_keyset_pagination_lists_every_order_once_newest_first(api, db, ctx, record_order_status):
    submitted = []
    for _ in range(25):
        body = new_body()
        assert (await api.post("/orders", json=body)).status_code == 202
        submitted.append(body["order_id"])
    completed = submitted[::3]
    for order_id in completed:
        await record_order_status(ctx, OrderStatusUpdate(order_id, COMPLETED, None, 4700, summary(COMPLETED)))

    assert await walk(api, "limit=4") == (submitted[::-1], 7)
    assert await walk(api, "limit=5") == (submitted[::-1], 6)  # a full last page: then one empty page
    assert await walk(api, "status=COMPLETED&limit=3") == (completed[::-1], 4)
    # Started sagas: the order-api recorded them RUNNING.
    assert await walk(api, "status=RUNNING&limit=100") == ([o for o in submitted[::-1] if o not in completed], 1)
    assert await walk(api, "status=PENDING") == ([], 1)
    assert await walk(api, "status=CANCELLED") == ([], 1)
    first = (await api.get("/orders")).json()
    assert len(first["items"]) == 20 and first["next_cursor"] is not None  # the default limit

    # An order submitted mid-walk is newer than the cursor: later pages neither show it nor shift.
    page = (await api.get("/orders?limit=10")).json()
    await api.post("/orders", json=new_body())
    rest, _ = await walk(api, f"limit=10&cursor={page['next_cursor']}")
    assert [o["order_id"] for o in page["items"]] + rest == submitted[::-1]


BAD_QUERIES = (
    "status=SHIPPED",
    "status=pending",
    "status=",
    "limit=0",
    "limit=101",
    "limit=-1",
    "limit=ten",
    "cursor=abc",
    "cursor=0",
    "cursor=-5",
    "cursor=1.5",
    "cursor=" + "9" * 20,
    "cursor=9828664582015734898",  # 19 digits, past a BIGINT (found by make fuzz: it was a 500)
    "cursor=%C2%B2",  # "²", a digit to str.isdigit but not to int()
)


async def test_a_bad_status_limit_or_cursor_is_a_400_problem(api):
    await api.post("/orders", json=new_body())  # something a lenient parser could have listed
    for query in BAD_QUERIES:
        response = await api.get(f"/orders?{query}")
        assert response.status_code == 400, query
        assert_problem(response, 400)


# --- unknown and finished orders -----------------------------------------------------------------------


async def test_an_unknown_order_is_a_404_problem_to_view_and_to_cancel(api, db, sidecar):
    assert "no order 'o-missing'" in assert_problem(await api.get("/orders/o-missing"), 404)["detail"]
    assert_problem(await api.post("/orders/o-missing/cancel", json={"reason": "changed my mind"}), 404)
    assert await rows(db) == [] and sidecar.scheduled == [] and sidecar.events == []


async def test_cancelling_a_finished_order_is_a_409_problem_and_sends_no_event(
    api, db, sidecar, ctx, record_order_status
):
    body = new_body()
    await api.post("/orders", json=body)
    await record_order_status(ctx, OrderStatusUpdate(body["order_id"], COMPLETED, None, 4700, summary(COMPLETED)))
    before = await row(db, body["order_id"])

    problem = assert_problem(await api.post(f"/orders/{body['order_id']}/cancel"), 409)

    assert (problem["order_id"], problem["order_status"]) == (body["order_id"], COMPLETED)
    assert sidecar.events == [] and await row(db, body["order_id"]) == before


async def test_cancelling_a_running_order_is_accepted_and_sends_the_cancel_event(api, sidecar):
    body = new_body()
    await api.post("/orders", json=body)

    response = await api.post(f"/orders/{body['order_id']}/cancel", json={"reason": "changed my mind"})

    assert response.status_code == 202 and response.json()["cancel_requested"] is True
    assert sidecar.events == [(body["order_id"], CANCEL_EVENT, {"reason": "changed my mind"})]


# --- orders left PENDING without a workflow ------------------------------------------------------------


async def test_an_order_left_pending_by_a_crash_is_scheduled_by_the_next_post_of_the_same_body(api, db, sidecar):
    body = new_body()
    await store_then_crash(db, body)
    assert (await row(db, body["order_id"]))["status"] == PENDING and sidecar.scheduled == []

    response = await api.post("/orders", json=body)

    assert response.status_code == 202 and response.json()["status"] == RUNNING  # the live workflow runs
    assert sidecar.scheduled == [body["order_id"]]
    assert len(await rows(db)) == 1


async def test_a_starter_that_died_holding_its_claim_keeps_others_away_until_the_claim_is_stale(db, sidecar):
    body = new_body()
    await store_then_crash(db, body)  # a PENDING row, no workflow
    async with db.transaction() as session:  # a starter claims it, then its process dies: nothing releases it
        assert await repository.claim_start(session, body["order_id"], timedelta(seconds=10)) is not None
    orders_ = Orders(db, SagaClient(lambda: sidecar), SagaRetry(), 1.0, claim_ttl=timedelta(milliseconds=300))

    assert await orders_.resume_pending() == 0 and sidecar.scheduled == []  # the claim is live
    await asyncio.sleep(0.4)
    assert await orders_.resume_pending() == 1 and sidecar.scheduled == [body["order_id"]]  # stale: taken over


async def test_an_order_stored_while_the_sidecar_was_down_is_a_503_and_a_repeated_post_starts_it(api, db, sidecar):
    body = new_body()
    sidecar.unavailable = True
    problem = assert_problem(await api.post("/orders", json=body), 503)
    assert problem["order_id"] == body["order_id"] and "repeat the same request" in problem["detail"]
    assert (await row(db, body["order_id"]))["status"] == PENDING

    sidecar.unavailable = False
    assert (await api.post("/orders", json=body)).status_code == 202
    assert sidecar.scheduled == [body["order_id"]] and len(await rows(db)) == 1


async def test_orders_left_pending_are_scheduled_at_start_up_and_no_others(
    db_url, db, sidecar, ctx, record_order_status
):
    orders_ = Orders(db, SagaClient(lambda: sidecar), SagaRetry(), 1.0)
    crashed_first, running, scheduled_but_unrecorded, crashed_last = (new_body() for _ in range(4))
    await store_then_crash(db, crashed_first)
    await orders_.submit(as_new_order(running), wait=False)
    await record_order_status(ctx, OrderStatusUpdate(running["order_id"], RUNNING))
    await orders_.submit(as_new_order(scheduled_but_unrecorded), wait=False)  # PENDING row, live instance
    await store_then_crash(db, crashed_last)
    sidecar.scheduled.clear()

    async with AsyncTestClient(app=order_api(db_url, sidecar)) as client:
        client.blocking_portal.call(start_up_sweep_finished)
        view = (await client.get(f"/orders/{crashed_last['order_id']}")).json()

    assert sidecar.scheduled == [crashed_first["order_id"], crashed_last["order_id"]]
    assert view["status"] == RUNNING  # the row stays PENDING until the saga's RUNNING record lands


# --- a saga workflow that failed outside the saga, and the operator's resolution --------------------------------


@dataclass
class StandInFailure:
    """The attributes of the SDK's FailureDetails that orchestrator.saga_client reads."""

    error_type: str
    message: str
    stack_trace: str | None = None


TAMPERED = StandInFailure("DAPR_WORKFLOW_HISTORY_TAMPERED", "signature 1: events digest mismatch for range [3, 6)")
AT_SHIP = json.dumps(
    {"status": "RUNNING", "steps": [{"name": "charge", "outcome": "succeeded"}, {"name": "ship", "outcome": "running"}]}
)


def fail(sidecar: InMemoryWorkflowClient, order_id: str, failure: Any = TAMPERED) -> None:
    """The engine failed the saga's workflow (say, its history was tampered with) while it was at ``ship``."""
    sidecar.instances[order_id].state = StandInState(
        WorkflowStatus.FAILED, serialized_custom_status=AT_SHIP, failure_details=failure
    )


@pytest_asyncio.fixture
async def operator_api(db_url: str, sidecar: InMemoryWorkflowClient):
    """The order-api as an operator reaches it (the test client is not on this machine: OPERATOR_ALLOW_REMOTE)."""
    settings = Settings(app_id=ORDER_API, database_url=db_url, retry=RETRY)
    app = create_app(settings, ApiSettings(operator_allow_remote=True), sagas=SagaClient(lambda: sidecar))
    async with AsyncTestClient(app=app) as client:
        client.blocking_portal.call(start_up_sweep_finished)
        yield client


async def test_a_failed_saga_workflow_shows_workflow_failed_in_the_order_and_the_list_and_cannot_be_cancelled(
    api, db, sidecar
):
    body = new_body()
    await api.post("/orders", json=body)
    fail(sidecar, body["order_id"])

    order = (await api.get(f"/orders/{body['order_id']}")).json()
    assert order["status"] == "WORKFLOW_FAILED"
    assert order["failure"] == {
        "step": "ship",
        "reason": "the workflow failed: DAPR_WORKFLOW_HISTORY_TAMPERED: signature 1: events digest mismatch for "
        "range [3, 6)",
    }
    assert (await row(db, body["order_id"]))["status"] == "WORKFLOW_FAILED"  # the row caught up as it was read
    listed = (await api.get("/orders", params={"status": "WORKFLOW_FAILED"})).json()["items"]
    assert [o["order_id"] for o in listed] == [body["order_id"]]
    problem = assert_problem(await api.post(f"/orders/{body['order_id']}/cancel"), 409)
    assert "WORKFLOW_FAILED" in problem["detail"]


async def test_resolve_is_for_clients_on_this_machine_unless_operator_allow_remote(api, sidecar):
    body = new_body()
    await api.post("/orders", json=body)
    fail(sidecar, body["order_id"])
    problem = assert_problem(await api.post(f"/orders/{body['order_id']}/resolve"), 403)
    assert "OPERATOR_ALLOW_REMOTE=true" in problem["detail"]
    assert [i for i in sidecar.instances if i.endswith(":resolve")] == []


async def test_resolving_starts_one_resolution_with_the_cause_and_the_failed_sagas_steps(operator_api, db, sidecar):
    body = new_body()
    order_id = body["order_id"]
    await operator_api.post("/orders", json=body)
    fail(sidecar, order_id)

    first = await operator_api.post(f"/orders/{order_id}/resolve")
    again = await operator_api.post(f"/orders/{order_id}/resolve")  # while it runs: nothing new starts

    assert first.status_code == again.status_code == 202
    assert first.json()["status"] == "WORKFLOW_FAILED" and first.json()["resolution"]["status"] == "RUNNING"
    assert sidecar.scheduled == [order_id, f"{order_id}:resolve"]
    resolution = sidecar.instances[f"{order_id}:resolve"]
    assert resolution.name == "resolve_order"
    request = json.loads(json.dumps(resolution.input, default=lambda o: o.model_dump()))
    assert request["order_id"] == order_id and request["email"] == body["email"]
    assert request["cause"]["step"] == "ship" and "DAPR_WORKFLOW_HISTORY_TAMPERED" in request["cause"]["reason"]
    assert request["saga"]["steps"] == json.loads(AT_SHIP)["steps"]
    assert request["retry"] == RETRY.model_dump()


async def test_an_order_recorded_as_failed_is_resolved_when_its_workflow_can_no_longer_be_read(operator_api, sidecar):
    # As chaos found on daprd: once daprd has failed a saga as tampered, loading its history again fails the
    # signature check, so every read of the workflow errors; the recorded failure is all the resolution needs.
    body = new_body()
    order_id = body["order_id"]
    await operator_api.post("/orders", json=body)
    fail(sidecar, order_id)
    assert (await operator_api.get(f"/orders/{order_id}")).json()["status"] == "WORKFLOW_FAILED"  # recorded
    sidecar.unreadable.add(order_id)

    response = await operator_api.post(f"/orders/{order_id}/resolve")

    assert response.status_code == 202, response.text
    assert response.json()["status"] == "WORKFLOW_FAILED" and response.json()["resolution"]["status"] == "RUNNING"
    request = json.loads(json.dumps(sidecar.instances[f"{order_id}:resolve"].input, default=lambda o: o.model_dump()))
    assert "DAPR_WORKFLOW_HISTORY_TAMPERED" in request["cause"]["reason"]
    assert (await operator_api.get(f"/orders/{order_id}")).json()["resolution"]["status"] == "RUNNING"


async def test_a_repeated_submission_of_a_workflow_failed_order_answers_it_as_stored_without_waiting_on_its_workflow(
    api, sidecar
):
    # Chaos on daprd: an order's resubmission with ?wait=true waited on the workflow daprd had failed as tampered and
    # no longer runs, and answered 503 ("context canceled") after 15 s, every time it was asked.
    body = new_body()
    order_id = body["order_id"]
    await api.post("/orders", json=body)
    fail(sidecar, order_id)
    assert (await api.get(f"/orders/{order_id}")).json()["status"] == "WORKFLOW_FAILED"  # recorded
    sidecar.unreadable.add(order_id)  # and every wait on it fails, as daprd's did

    again = await api.post("/orders", params={"wait": "true"}, json=body)

    assert again.status_code == 202, again.text
    assert again.json()["status"] == "WORKFLOW_FAILED" and again.json()["failure"]["step"] == "ship"


async def test_the_sweep_records_a_quiet_order_whose_workflow_can_no_longer_be_read_as_workflow_failed(
    operator_api, db, sidecar
):
    # Chaos on daprd: the saga was failed as tampered and every read refused at once, before the order-api saw the
    # failure; the order must not read RUNNING for ever.
    body = new_body()
    order_id = body["order_id"]
    await operator_api.post("/orders", json=body)
    sidecar.unreadable.add(order_id)
    assert (await operator_api.get(f"/orders/{order_id}")).json()["status"] == RUNNING  # a read alone waits

    assert await Sweep(Orders(db, SagaClient(lambda: sidecar), RETRY, 1.0)).run(timedelta(0)) == 1

    order = (await operator_api.get(f"/orders/{order_id}")).json()
    assert order["status"] == "WORKFLOW_FAILED"
    assert "DAPR_WORKFLOW_HISTORY_TAMPERED" in order["failure"]["reason"]
    assert "signature verification failed" in order["failure"]["reason"]
    assert (await operator_api.post(f"/orders/{order_id}/resolve")).status_code == 202
    assert f"{order_id}:resolve" in sidecar.instances


async def test_a_resolution_recorded_ends_the_order_with_its_undos_and_a_second_resolve_is_a_409(
    operator_api, db, sidecar, record_order_status
):
    body = new_body()
    order_id = body["order_id"]
    await operator_api.post("/orders", json=body)
    fail(sidecar, order_id)
    await operator_api.post(f"/orders/{order_id}/resolve")
    cause = (await row(db, order_id))["failure"]
    undone = [{"name": "refund", "outcome": "undone"}, {"name": "release_inventory", "outcome": "undone"}]
    resolution = {
        "status": COMPENSATED,
        "failure": cause,
        "compensations": undone,
        "resolved_at": "2030-01-01T00:00:00+00:00",
    }
    final = {**json.loads(AT_SHIP), "compensations": undone, "resolution": resolution}
    await record_order_status(None, OrderStatusUpdate(order_id, COMPENSATED, cause, None, final))

    order = (await operator_api.get(f"/orders/{order_id}")).json()
    assert (order["status"], order["failure"], order["compensations"]) == (COMPENSATED, cause, undone)
    assert order["resolution"] == {
        "status": COMPENSATED,
        "compensations": undone,
        "resolved_at": "2030-01-01T00:00:00+00:00",
    }
    problem = assert_problem(await operator_api.post(f"/orders/{order_id}/resolve"), 409)
    assert "COMPENSATED" in problem["detail"]


async def test_resolve_refuses_an_order_whose_workflow_did_not_fail(operator_api, sidecar):
    body = new_body()
    await operator_api.post("/orders", json=body)
    problem = assert_problem(await operator_api.post(f"/orders/{body['order_id']}/resolve"), 409)
    assert "only a WORKFLOW_FAILED order" in problem["detail"]
    assert_problem(await operator_api.post("/orders/nobody/resolve"), 404)


async def test_the_order_api_records_the_end_of_a_saga_nobody_waits_for_without_being_asked(db, sidecar):
    # The saga does not record its end; after POST /orders without ?wait, a watcher of the order-api does.
    orders_ = Orders(db, SagaClient(lambda: sidecar), RETRY, 1.0)
    body = new_body()
    await orders_.submit(as_new_order(body), wait=False)
    assert (await row(db, body["order_id"]))["status"] == RUNNING

    sidecar.finish(body["order_id"], summary(COMPLETED))
    for _ in range(500):  # the watcher's next wait sees it finished (the stand-in answers every 20 ms)
        if (await row(db, body["order_id"]))["status"] != RUNNING:
            break
        await asyncio.sleep(0.02)

    stored = await row(db, body["order_id"])
    assert (stored["status"], stored["total_cents"], stored["saga"]) == (COMPLETED, 4700, summary(COMPLETED))
    orders_.stop_watching()


async def test_the_reconcile_sweep_brings_quiet_rows_up_to_date_with_their_workflows(db, sidecar):
    before_restart = Orders(db, SagaClient(lambda: sidecar), RETRY, 1.0)
    failed, finished, going = new_body(), new_body(), new_body()
    for body in (failed, finished, going):
        await before_restart.submit(as_new_order(body), wait=False)
    before_restart.stop_watching()  # the order-api stopped: its watchers, and the writes they would make, are lost
    orders_ = Orders(db, SagaClient(lambda: sidecar), RETRY, 1.0)  # as it runs again
    sweep = Sweep(orders_)
    fail(sidecar, failed["order_id"], StandInFailure("NonDeterminismError", "a different activity was scheduled"))
    sidecar.finish(finished["order_id"], summary(COMPLETED))  # nobody recorded its end

    assert await sweep.run(timedelta(0)) == 2
    assert (await row(db, failed["order_id"]))["status"] == "WORKFLOW_FAILED"
    assert (await row(db, finished["order_id"]))["status"] == COMPLETED
    assert (await row(db, going["order_id"]))["status"] == RUNNING
    assert await sweep.run(timedelta(0)) == 0
    assert await sweep.run(timedelta(hours=1)) == 0  # nothing quiet for that long: nothing read


async def test_the_reconcile_sweep_wakes_a_saga_the_engine_created_but_never_started(db, sidecar):
    # daprd 1.18.2 can drop an instance's start (its reminder fired before the instance was saved): the instance
    # stays PENDING with nothing to run it. An event raised to it makes daprd run it.
    sweep, (stranded, going) = await swept(db, sidecar, 2)
    sidecar.instances[stranded["order_id"]].state = StandInState(WorkflowStatus.PENDING)

    assert await sweep.run(timedelta(0)) == 0  # no row changed: the saga has yet to run

    assert sidecar.events == [(stranded["order_id"], "wake", None)]
    assert (await row(db, stranded["order_id"]))["status"] == RUNNING  # as the start recorded it

    # Still PENDING a sweep later: daprd also shows a workflow it tombstoned before its first turn was saved so, and
    # drops every work item for it. Nothing will run it: the operator's.
    assert await sweep.run(timedelta(0)) == 1
    stored = await row(db, stranded["order_id"])
    assert stored["status"] == "WORKFLOW_FAILED"
    assert "a wake did not start it" in stored["failure"]["reason"]
    assert sidecar.events == [(stranded["order_id"], "wake", None)]  # not woken again
    assert (await row(db, going["order_id"]))["status"] == RUNNING


async def test_the_reconcile_sweep_has_the_app_of_a_quiet_sagas_running_child_wake_that_child(db, sidecar):
    # A child workflow's start can be dropped as a saga's can; only its own app can wake it: the sweep starts a
    # wake_child workflow on the order-api, which asks that app (orchestrator.wake).
    sweep, (reviewing, charging) = await swept(db, sidecar, 2)
    child = f"{reviewing['order_id']}:risk_review"
    in_review = summary(RUNNING)
    in_review["steps"].append(
        {"name": "risk_review", "app": "payment", "outcome": "running", "kind": "workflow", "instance_id": child}
    )
    sidecar.instances[reviewing["order_id"]].state = StandInState(
        WorkflowStatus.RUNNING, serialized_custom_status=json.dumps(in_review)
    )
    at_charge = summary(RUNNING)
    at_charge["steps"] += [
        {"name": "risk_review", "app": "payment", "outcome": "succeeded", "kind": "workflow", "instance_id": "x"},
        {"name": "charge", "app": "payment", "outcome": "running"},
    ]
    sidecar.instances[charging["order_id"]].state = StandInState(
        WorkflowStatus.RUNNING, serialized_custom_status=json.dumps(at_charge)
    )

    assert await sweep.run(timedelta(0)) == 0  # no row changes

    wakes = [(i, sidecar.instances[i]) for i in sidecar.scheduled if sidecar.instances[i].name == "wake_child"]
    assert len(wakes) == 1  # none for the saga at charge (an activity: the engine retries those itself)
    instance_id, wake = wakes[0]
    assert instance_id.startswith(f"{child}:wake:")
    assert wake.input.model_dump() == {"order_id": reviewing["order_id"], "app_id": "payment", "instance_id": child}
    assert sidecar.events == []  # nothing raised to the saga itself


async def test_the_reconcile_sweep_stops_a_saga_whose_step_shows_no_progress_and_hands_it_to_the_operator(db, sidecar):
    # daprd 1.18.2 can lose a step's result (two replicas' daprds briefly hosting one workflow): the saga then waits
    # for ever with the step in flight. Past stall_after with nothing changed, the sweep stops it: WORKFLOW_FAILED.
    sweep, (lost, moving, waiting, told) = await swept(db, sidecar, 4, stall_after=timedelta(seconds=2))

    def show(order_id: str, step: dict[str, Any], status_now: str = RUNNING) -> None:
        status = summary(status_now)
        status["steps"].append(step)
        state = StandInState(WorkflowStatus.RUNNING, serialized_custom_status=json.dumps(status))
        sidecar.instances[order_id].state = state

    def charge(attempt: int) -> dict[str, Any]:
        return {"name": "charge", "app": "payment", "outcome": "running", "started_at": str(attempt)}

    show(lost["order_id"], {"name": "validate_order", "app": "inventory", "outcome": "running"})
    show(waiting["order_id"], {"name": "approval", "app": None, "outcome": "waiting", "kind": "wait"})
    show(moving["order_id"], charge(0))
    # Concluded, and its notification's result lost: the order keeps the saga's own ending, not an operator's.
    show(told["order_id"], {"name": "notify", "app": "notification", "outcome": "running"}, COMPLETED)
    assert await sweep.run(timedelta(0)) == 0  # first sight
    assert await sweep.run(timedelta(0)) == 0  # not long enough yet
    await asyncio.sleep(2.1)
    show(moving["order_id"], charge(1))
    assert sidecar.terminated == []

    assert await sweep.run(timedelta(0)) == 2  # 2 s with the same step in flight and nothing else
    assert sorted(sidecar.terminated) == sorted([lost["order_id"], told["order_id"]])
    concluded = await row(db, told["order_id"])
    assert concluded["status"] == COMPLETED
    assert "notify: no progress for 2 s with notify in flight" in concluded["saga"]["warnings"][0]
    stored = await row(db, lost["order_id"])
    assert stored["status"] == "WORKFLOW_FAILED"
    assert stored["failure"]["step"] == "validate_order"
    assert "no progress for 2 s with validate_order in flight" in stored["failure"]["reason"]
    # A saga that moved between sweeps, and one waiting for a person (which has its own deadline), go on.
    assert (await row(db, moving["order_id"]))["status"] == RUNNING
    assert (await row(db, waiting["order_id"]))["status"] == RUNNING
    assert await sweep.run(timedelta(0)) == 0


async def test_orders_waiting_for_a_person_never_crowd_running_ones_out_of_the_sweep(db, sidecar):
    orders_ = Orders(db, SagaClient(lambda: sidecar), RETRY, 1.0)
    waiting, running = [new_body() for _ in range(3)], new_body()
    for body in (*waiting, running):
        await orders_.submit(as_new_order(body), wait=False)
    async with db.transaction() as session:
        for age, body in enumerate(waiting, start=2):  # waiting longer than the running one has been quiet
            await session.execute(
                sa.update(orders)
                .where(orders.c.order_id == body["order_id"])
                .values(status=AWAITING_APPROVAL, updated_at=sa.func.now() - timedelta(hours=age))
            )
        await session.execute(
            sa.update(orders)
            .where(orders.c.order_id == running["order_id"])
            .values(updated_at=sa.func.now() - timedelta(hours=1))
        )
    async with db.session() as session:
        quiet = await repository.quiet_order_ids(session, timedelta(minutes=1), limit=2)
    # Two of each kind at most, least recently changed first: the running one is swept with the two oldest waits.
    assert quiet == [running["order_id"], waiting[2]["order_id"], waiting[1]["order_id"]]
