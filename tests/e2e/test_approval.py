"""End-to-end: the risk review (payment's child workflow, started by the saga with its history propagated) and the
wait for a person it can ask for, through the REST APIs of the running system, on both engines: approved, rejected,
left to its deadline, cancelled while waiting; an order the review rejects; the 409s; and where it shows (the order,
the list, the workflow's history, payment's record of the review, what the customer was told, the OpenAPI document).

The e2e system gives a person APPROVAL_TIMEOUT_SECONDS (``conftest``) to decide; payment's thresholds are its
defaults, so ``common.scenarios.LARGE`` (550.00) waits for a person and ``OVER_THE_LIMIT`` (1,100.00) is rejected.
"""

from __future__ import annotations

import time

import httpx

from common.scenarios import LARGE, OVER_THE_LIMIT
from tests.e2e.conftest import APPROVAL_TIMEOUT_SECONDS
from tests.support.orders import new_id, order_body

TERMINAL = {"COMPLETED", "COMPENSATED", "REJECTED", "CANCELLED", "COMPENSATION_FAILED"}


def items(pairs) -> list[dict]:
    return [{"sku": sku, "quantity": quantity} for sku, quantity in pairs]


def until(api: httpx.Client, order_id: str, done, timeout: float = 60) -> dict:
    deadline = time.monotonic() + timeout
    order: dict = {}
    while time.monotonic() < deadline:
        order = api.get(f"/orders/{order_id}").json()
        if done(order):
            return order
        time.sleep(0.2)
    raise AssertionError(f"order {order_id}: not there after {timeout}s: {order}")


def awaiting(api: httpx.Client, order_id: str) -> dict:
    return until(api, order_id, lambda o: o["status"] == "AWAITING_APPROVAL" or o["status"] in TERMINAL)


def terminal(api: httpx.Client, order_id: str, timeout: float = 60) -> dict:
    return until(api, order_id, lambda o: o["status"] in TERMINAL, timeout)


def stock(system) -> dict[str, int]:
    with system.client("inventory") as inv:
        return {p["sku"]: p["available"] for p in inv.get("/products").json()}


def told(system, order_id: str) -> list[str]:
    with system.client("notification") as note:
        return [n["message"] for n in note.get("/notifications", params={"order_id": order_id}).json()]


def submit_large(api: httpx.Client, prefix: str) -> str:
    order_id = new_id(prefix)
    response = api.post("/orders", json=order_body(order_id, items=items(LARGE)))
    assert response.status_code == 202, response.text
    return order_id


def test_a_large_order_waits_for_a_person_with_a_deadline_and_completes_once_approved(system, api):
    order_id = submit_large(api, "approve")
    waiting = awaiting(api, order_id)

    assert waiting["status"] == "AWAITING_APPROVAL", waiting
    approval = waiting["approval"]
    assert approval["state"] == "waiting" and approval["reason"] == "total 550.00 is above 500.00"
    assert approval["deadline"] > approval["requested_at"]
    review, wait = waiting["steps"][2], waiting["steps"][3]
    assert (review["name"], review["kind"], review["app"], review["decision"]) == (
        "risk_review",
        "workflow",
        "payment",
        "review",
    )
    assert review["instance_id"] == f"{order_id}:risk_review" and review["custody"]["ok"] is True
    assert [s["name"] for s in review["steps"]] == ["check_custody", "assess_risk"]
    assert (wait["name"], wait["kind"], wait["outcome"], wait["deadline"]) == (
        "approval",
        "wait",
        "waiting",
        approval["deadline"],
    )
    # The list reads the rows: the saga records AWAITING_APPROVAL there.
    listed = until(
        api,
        order_id,
        lambda _: (
            order_id in {o["order_id"] for o in api.get("/orders?status=AWAITING_APPROVAL&limit=100").json()["items"]}
        ),
    )
    assert listed["status"] == "AWAITING_APPROVAL"

    response = api.post(f"/orders/{order_id}/approve", json={"reviewer": "grace", "note": "known customer"})
    assert response.status_code == 202, response.text
    assert response.json()["decision_requested"] == "approve"
    order = terminal(api, order_id)

    assert order["status"] == "COMPLETED", order
    assert order["approval"]["state"] == "approved" and order["approval"]["reviewer"] == "grace"
    assert [s["name"] for s in order["steps"]][:6] == [
        "validate_order",
        "reserve_inventory",
        "risk_review",
        "approval",
        "charge",
        "ship",
    ]
    with system.client("payment") as pay:
        assert pay.get(f"/payments/{order_id}").json()["charged_cents"] == order["total_cents"] == 55_000
        review_record = pay.get(f"/reviews/{order_id}").json()
    assert (review_record["decision"], review_record["amount_cents"]) == ("review", 55_000)
    assert review_record["custody"]["ok"] is True
    assert told(system, order_id) == ["Your order is confirmed and on its way."]
    again = api.post(f"/orders/{order_id}/approve")
    assert again.status_code == 409 and again.headers["content-type"].startswith("application/problem+json")


def test_a_large_order_a_person_rejects_is_rejected_with_its_reservation_released_and_nothing_charged(system, api):
    before = stock(system)
    order_id = submit_large(api, "reject")
    assert awaiting(api, order_id)["status"] == "AWAITING_APPROVAL"

    response = api.post(f"/orders/{order_id}/reject", json={"reviewer": "grace", "note": "address looks wrong"})
    assert response.status_code == 202, response.text
    order = terminal(api, order_id)

    assert order["status"] == "REJECTED", order
    assert order["failure"] == {"step": "approval", "reason": "rejected by grace: address looks wrong"}
    assert [(c["name"], c["outcome"]) for c in order["compensations"]] == [("release_inventory", "undone")]
    assert stock(system) == before
    with system.client("payment") as pay:
        assert pay.get(f"/payments/{order_id}").status_code == 404
    [message] = told(system, order_id)
    assert message.startswith("We are sorry: after reviewing your order we cannot accept it.")


def test_a_large_order_nobody_decides_on_is_rejected_at_its_deadline_and_unwound(system, api):
    before = stock(system)
    order_id = submit_large(api, "timeout")
    waiting = awaiting(api, order_id)
    assert waiting["status"] == "AWAITING_APPROVAL"

    order = terminal(api, order_id, timeout=APPROVAL_TIMEOUT_SECONDS + 60)

    assert order["status"] == "REJECTED", order
    assert order["failure"] == {
        "step": "approval",
        "reason": f"no decision before the deadline, {waiting['approval']['deadline']}",
    }
    assert order["approval"]["state"] == "timed_out"
    assert [(c["name"], c["outcome"]) for c in order["compensations"]] == [("release_inventory", "undone")]
    assert stock(system) == before
    # The wait was a durable timer, in the workflow's own history.
    history = api.get(f"/orders/{order_id}/history").json()
    created = [e for e in history if e["type"] == "TimerCreated" and e.get("timer_origin") == "createTimer"]
    assert len(created) == 1 and any(
        e["type"] == "TimerFired" and e["task_id"] == created[0]["task_id"] for e in history
    )
    assert api.post(f"/orders/{order_id}/approve").status_code == 409


def test_cancelling_an_order_awaiting_approval_ends_the_wait_and_releases_the_reservation(system, api):
    before = stock(system)
    order_id = submit_large(api, "cancelwait")
    assert awaiting(api, order_id)["status"] == "AWAITING_APPROVAL"

    response = api.post(f"/orders/{order_id}/cancel", json={"reason": "changed my mind"})
    assert response.status_code == 202, response.text
    order = terminal(api, order_id)

    assert order["status"] == "CANCELLED", order
    assert order["failure"] == {"step": "approval", "reason": "changed my mind"}
    assert order["approval"]["state"] == "cancelled"
    assert [(c["name"], c["outcome"]) for c in order["compensations"]] == [("release_inventory", "undone")]
    assert stock(system) == before


def test_an_order_above_the_card_limit_is_rejected_by_the_risk_review_and_its_reservation_released(system, api):
    before = stock(system)
    order_id = new_id("riskrej")
    response = api.post("/orders?wait=true", json=order_body(order_id, items=items(OVER_THE_LIMIT)))
    order = response.json()

    assert order["status"] == "REJECTED", order
    assert order["failure"] == {"step": "risk_review", "reason": "total 1100.00 is above the card limit, 1000.00"}
    assert [(c["name"], c["outcome"]) for c in order["compensations"]] == [("release_inventory", "undone")]
    assert "charge" not in [s["name"] for s in order["steps"]]
    assert stock(system) == before
    with system.client("payment") as pay:
        assert pay.get(f"/payments/{order_id}").status_code == 404
        assert pay.get(f"/reviews/{order_id}").json()["decision"] == "reject"


def test_a_decision_on_an_order_that_is_not_awaiting_approval_is_a_409_problem(system, api):
    finished = new_id("notwaiting")
    assert api.post("/orders?wait=true", json=order_body(finished)).json()["status"] == "COMPLETED"
    for verb in ("approve", "reject"):
        response = api.post(f"/orders/{finished}/{verb}")
        assert response.status_code == 409, response.text
        assert response.json()["order_status"] == "COMPLETED"
    assert api.post("/orders/no-such-order/approve").status_code == 404
    assert api.post(f"/orders/{finished}/approve", json={"approved": True}).status_code == 400


def test_the_history_shows_the_risk_review_as_a_child_workflow_on_payment(system, api):
    order_id = new_id("childhist")
    assert api.post("/orders?wait=true", json=order_body(order_id)).json()["status"] == "COMPLETED"
    history = api.get(f"/orders/{order_id}/history").json()

    [created] = [e for e in history if e["type"] == "ChildWorkflowInstanceCreated"]
    assert (created["name"], created["app"], created["instance_id"]) == (
        "risk_review",
        "payment",
        f"{order_id}:risk_review",
    )
    [done] = [e for e in history if e["type"] == "ChildWorkflowInstanceCompleted"]
    assert done["task_id"] == created["task_id"] and '"decision": "approve"' in done["result"]


def test_the_openapi_documents_have_the_new_endpoints_and_status_as_additions(system):
    with system.client("order-api") as api:
        document = api.get("/schema/openapi.json").json()
    paths = document["paths"]
    assert paths["/orders/{order_id}/approve"]["post"]["operationId"] == "approveOrder"
    assert paths["/orders/{order_id}/reject"]["post"]["operationId"] == "rejectOrder"
    for path in ("/orders/{order_id}/approve", "/orders/{order_id}/reject"):
        assert {"202", "404", "409"} <= set(paths[path]["post"]["responses"])
    [status] = [p for p in paths["/orders"]["get"]["parameters"] if p["name"] == "status"]
    assert "AWAITING_APPROVAL" in str(status["schema"])
    # What was there before is still there, as it was: new fields and endpoints only.
    assert {"/orders", "/orders/{order_id}", "/orders/{order_id}/cancel", "/orders/{order_id}/history"} <= set(paths)
    with system.client("payment") as pay:
        assert "/reviews/{order_id}" in pay.get("/schema/openapi.json").json()["paths"]
