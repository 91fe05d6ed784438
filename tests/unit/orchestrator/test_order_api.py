"""The order-api's HTTP layer in-process: malformed input is refused with problem details before the use cases
are reached (so nothing is stored and no workflow starts), and the pure view and settings helpers."""

from __future__ import annotations

import copy
from dataclasses import replace
from datetime import UTC, datetime

import msgspec
import pytest
from litestar import Litestar
from litestar.di import Provide
from litestar.testing import TestClient

from common.contracts import SagaRetry
from common.problems import problem_config
from common.settings import SettingsError, load_settings
from orchestrator.api import PROBLEMS, OrderController, OrderRequest, new_order
from orchestrator.domain import InvalidListing, NewOrder, OrderConflict, OrderStatusUpdate, parse_cursor, stage
from orchestrator.service import Orders, Submitted
from orchestrator.settings import load_api_settings
from orchestrator.views import WorkflowView, order_view

BODY = {
    "order_id": "o-1",
    "customer_id": "c-1",
    "email": "ada@example.com",
    "items": [{"sku": "SKU-MUG", "quantity": 2}],
    "payment": {"method": "card", "token": "tok_visa"},
    "shipping_address": {"name": "Ada", "line1": "1 Main St", "city": "London", "postal_code": "N1", "country": "GB"},
}
NOW = datetime(2030, 1, 1, tzinfo=UTC)


class RecordingOrders(Orders):
    """Stands in for the Orders use cases (which need PostgreSQL and a sidecar) to see what reaches them.
    A subclass only because Litestar checks the dependency's type."""

    def __init__(self) -> None:  # no database, no workflow client: nothing below submit is reached
        self.submitted: list[NewOrder] = []
        self.decisions: list[tuple[str, bool, str | None, str | None]] = []

    async def submit(self, order: NewOrder, *, wait: bool) -> Submitted:
        self.submitted.append(order)
        return Submitted(order_view({**ROW, "order_id": order.order_id or "generated"}, None), True)

    async def decide(self, order_id: str, approved: bool, reviewer: str | None = None, note: str | None = None):
        if order_id != "o-1":
            raise OrderConflict(f"order {order_id!r} is not awaiting approval (it is COMPLETED)", order_id=order_id)
        self.decisions.append((order_id, approved, reviewer, note))
        view = order_view({**ROW, "status": "AWAITING_APPROVAL"}, None)
        return replace(view, decision_requested="approve" if approved else "reject")


def as_new_order(body: dict) -> NewOrder:
    return new_order(msgspec.convert(body, OrderRequest))


ROW = {
    "order_id": "o-1",
    "status": "PENDING",
    "customer_id": "c-1",
    "email": "ada@example.com",
    "total_cents": None,
    "items": BODY["items"],
    "failure": None,
    "saga": None,
    "created_at": NOW,
    "updated_at": NOW,
    "seq": 1,
}


@pytest.fixture
def api():
    orders = RecordingOrders()
    app = Litestar(
        route_handlers=[OrderController],
        dependencies={"orders": Provide(lambda: orders, sync_to_thread=False)},
        **problem_config(PROBLEMS),
    )
    with TestClient(app=app) as client:
        client.orders = orders
        yield client


def mutated(change) -> dict:
    body = copy.deepcopy(BODY)
    change(body)
    return body


MALFORMED = {
    "zero quantity": lambda b: b["items"][0].update(quantity=0),
    "negative quantity": lambda b: b["items"][0].update(quantity=-3),
    "quantity as a string": lambda b: b["items"][0].update(quantity="2"),
    "quantity as a float": lambda b: b["items"][0].update(quantity=1.5),
    "quantity as a bool": lambda b: b["items"][0].update(quantity=True),
    "no items": lambda b: b.update(items=[]),
    "an unknown field": lambda b: b.update(coupon="FREE"),
    "an unknown nested field": lambda b: b["payment"].update(cvv="123"),
    "a missing email": lambda b: b.pop("email"),
    "an email without a domain": lambda b: b.update(email="ada"),
    "an order id with a space": lambda b: b.update(order_id="o 1"),
    "an order id too long": lambda b: b.update(order_id="x" * 65),
    "a payment method other than card": lambda b: b["payment"].update(method="cash"),
    "the same sku twice": lambda b: b["items"].append({"sku": "SKU-MUG", "quantity": 1}),
    "an empty city": lambda b: b["shipping_address"].update(city=""),
}


@pytest.mark.parametrize("case", MALFORMED)
def test_a_malformed_order_is_a_400_problem_and_reaches_nothing(api, case):
    response = api.post("/orders", json=mutated(MALFORMED[case]))

    assert response.status_code == 400, response.text
    assert response.headers["content-type"].startswith("application/problem+json")
    assert response.json()["status"] == 400 and response.json()["detail"]
    assert api.orders.submitted == []


def test_a_strictness_error_names_the_field_that_is_wrong(api):
    problem = api.post("/orders", json=mutated(MALFORMED["quantity as a string"])).json()
    assert problem["errors"] == [{"message": "Expected `int`, got `str`", "key": "items[0].quantity", "source": "body"}]


def test_a_body_that_is_not_json_or_too_large_is_refused(api):
    assert api.post("/orders", content=b"{not json", headers={"content-type": "application/json"}).status_code == 400
    huge = mutated(lambda b: b["payment"].update(token="t" * 100_000))
    assert api.post("/orders", json=huge).status_code == 413
    assert api.orders.submitted == []


def test_a_well_formed_order_is_accepted_with_its_location(api):
    response = api.post("/orders", json=BODY)

    assert response.status_code == 202
    assert response.headers["location"] == "/orders/o-1"
    assert api.orders.submitted == [as_new_order(BODY)]


def test_a_missing_order_id_reaches_the_use_case_as_none_so_it_generates_one(api):
    api.post("/orders", json=mutated(lambda b: b.pop("order_id")))
    assert api.orders.submitted[0].order_id is None


def test_the_list_limit_must_be_between_1_and_100(api):
    assert api.get("/orders?limit=0").status_code == 400
    assert api.get("/orders?limit=101").status_code == 400


def test_a_cursor_must_be_one_handed_out_by_a_previous_page():
    assert parse_cursor(None) is None and parse_cursor("42") == 42
    for bad in ("abc", "-1", "0", "1.5", "9" * 20):
        with pytest.raises(InvalidListing) as err:
            parse_cursor(bad)
        assert PROBLEMS[InvalidListing](err.value).status_code == 400


def test_the_view_of_a_running_order_shows_the_live_steps_and_stack_from_the_custom_status():
    live = {
        "status": "RUNNING",
        "failure": None,
        "total_cents": 3800,
        "steps": [{"name": "validate_order", "app": "inventory", "outcome": "succeeded"}],
        "compensations": [{"name": "release_inventory", "outcome": "pending"}],
    }
    view = order_view(ROW, WorkflowView("RUNNING", live, None, None))

    assert view.status == "RUNNING"  # the RUNNING record may lag; the live workflow does not
    assert view.total_cents == 3800
    assert view.steps == live["steps"] and view.compensations == live["compensations"]
    assert view.failure is None


def test_the_view_of_a_finished_order_without_its_workflow_comes_from_the_stored_summary():
    summary = {
        "status": "COMPENSATED",
        "failure": {"step": "charge", "reason": "card declined"},
        "steps": [{"name": "charge", "outcome": "refused"}],
        "compensations": [{"name": "refund", "outcome": "undone"}],
    }
    row = {**ROW, "status": "COMPENSATED", "failure": summary["failure"], "total_cents": 3800, "saga": summary}
    view = order_view(row, None)

    assert (view.status, view.failure, view.total_cents) == ("COMPENSATED", summary["failure"], 3800)
    assert view.compensations == [{"name": "refund", "outcome": "undone"}]


def test_a_workflow_that_itself_failed_is_flagged_for_a_person():
    view = order_view({**ROW, "status": "RUNNING"}, WorkflowView("FAILED", None, None, "TypeError: bad result"))
    assert view.workflow == {"runtime_status": "FAILED", "failure": "TypeError: bad result"}


def test_the_saga_retry_takes_the_saga_retry_settings_as_they_are():
    env = {
        "SAGA_RETRY_FIRST_INTERVAL_MS": "100",
        "SAGA_RETRY_MAX_ATTEMPTS": "3",
        "SAGA_RETRY_BACKOFF": "1.5",
        "SAGA_RETRY_MAX_INTERVAL_MS": "400",
    }
    assert load_settings("order-api", env).retry == SagaRetry(
        first_interval_ms=100, max_attempts=3, backoff=1.5, max_interval_ms=400
    )


def test_the_wait_timeout_comes_from_the_environment_and_is_bounded():
    assert load_api_settings({}).wait_timeout_seconds == 30.0
    assert load_api_settings({"ORDER_WAIT_TIMEOUT_SECONDS": "2.5"}).wait_timeout_seconds == 2.5
    for bad in ("0", "-1", "soon", "601"):
        with pytest.raises(SettingsError, match="ORDER_WAIT_TIMEOUT_SECONDS"):
            load_api_settings({"ORDER_WAIT_TIMEOUT_SECONDS": bad})


def test_the_documented_status_filter_lists_exactly_the_order_statuses():
    import typing

    from orchestrator.api import StatusName
    from orchestrator.domain import STATUSES

    assert typing.get_args(StatusName) == STATUSES


def test_options_lists_every_method_of_the_path_it_asks_about(api):
    # Litestar 2 lists only the first handler's methods for a path served by several (litestar#4169).
    assert api.options("/orders").headers["allow"] == "GET, OPTIONS, POST"
    assert api.options("/orders/o-1").headers["allow"] == "GET, OPTIONS"
    assert api.options("/orders/o-1/cancel").headers["allow"] == "OPTIONS, POST"


def test_approve_and_reject_pass_who_decided_and_why_to_the_use_case_and_answer_202(api):
    approved = api.post("/orders/o-1/approve", json={"reviewer": "grace", "note": "known customer"})
    rejected = api.post("/orders/o-1/reject")

    assert (approved.status_code, rejected.status_code) == (202, 202)
    assert approved.json()["decision_requested"] == "approve" and rejected.json()["decision_requested"] == "reject"
    assert api.orders.decisions == [("o-1", True, "grace", "known customer"), ("o-1", False, None, None)]


def test_a_decision_on_an_order_not_awaiting_approval_is_a_409_problem(api):
    response = api.post("/orders/o-2/approve")
    assert response.status_code == 409
    assert response.headers["content-type"].startswith("application/problem+json")
    assert "not awaiting approval" in response.json()["detail"]


def test_a_malformed_decision_is_a_400_problem_and_reaches_nothing(api):
    for body in ({"approved": True}, {"reviewer": ""}, {"note": "x" * 201}, {"reviewer": 7}):
        assert api.post("/orders/o-1/reject", json=body).status_code == 400, body
    assert api.orders.decisions == []


WAITING = {
    "status": "AWAITING_APPROVAL",
    "steps": [{"name": "approval", "kind": "wait", "outcome": "waiting", "deadline": "2030-01-02T00:00:00+00:00"}],
    "compensations": [{"name": "release_inventory", "outcome": "pending"}],
    "approval": {
        "state": "waiting",
        "requested_at": "2030-01-01T00:00:00+00:00",
        "deadline": "2030-01-02T00:00:00+00:00",
        "reason": "total 550.00 is above 500.00",
    },
}


def test_a_waiting_order_shows_awaiting_approval_and_its_deadline_from_the_workflow_though_its_row_lags():
    view = order_view({**ROW, "status": "RUNNING"}, WorkflowView("RUNNING", WAITING, None, None))
    assert view.status == "AWAITING_APPROVAL"
    assert view.approval == WAITING["approval"]


def test_an_approved_order_shows_running_from_the_workflow_though_its_row_still_says_awaiting_approval():
    live = {**WAITING, "status": "RUNNING", "approval": {**WAITING["approval"], "state": "approved"}}
    view = order_view({**ROW, "status": "AWAITING_APPROVAL"}, WorkflowView("RUNNING", live, None, None))
    assert (view.status, view.approval["state"]) == ("RUNNING", "approved")


def test_status_records_move_an_order_forward_only_with_running_again_after_an_approval():
    stages = [
        stage(OrderStatusUpdate("o", "RUNNING")),
        stage(OrderStatusUpdate("o", "AWAITING_APPROVAL")),
        stage(OrderStatusUpdate("o", "RUNNING", approved=True)),
        stage(OrderStatusUpdate("o", "REJECTED")),
    ]
    assert stages == sorted(set(stages))
    with pytest.raises(ValueError, match="not a status the saga records"):
        stage(OrderStatusUpdate("o", "PENDING"))


@pytest.mark.parametrize(
    ("variable", "field", "default"),
    [
        ("APPROVAL_TIMEOUT_SECONDS", "approval_timeout_seconds", 86_400),  # a day
        ("STALL_AFTER_SECONDS", "stall_after_seconds", 900),  # a quarter of an hour
    ],
)
def test_a_limit_in_seconds_comes_from_the_environment_with_its_default(variable: str, field: str, default: int):
    assert getattr(load_api_settings({}), field) == default
    assert getattr(load_api_settings({variable: "15"}), field) == 15
    for bad in ("0", "-5", "never", str(31 * 24 * 3600)):
        with pytest.raises(SettingsError, match=variable):
            load_api_settings({variable: bad})
