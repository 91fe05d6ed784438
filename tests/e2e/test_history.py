"""``GET /orders/{id}/history``: the order's workflow events as the engine recorded them, on both engines."""

from __future__ import annotations

import uuid

import httpx

from common.scenarios import SCENARIOS, order_body


def test_the_history_shows_each_attempt_of_a_retried_step_and_the_timer_between_them(system):
    order_id = f"history-{uuid.uuid4().hex[:10]}"
    with system.client("payment") as pay, system.client("order-api") as api:
        armed = pay.put("/faults/charge", json={"mode": "transient", "count": 1, "order_id": order_id})
        assert armed.status_code == 200, armed.text
        try:
            order = api.post("/orders?wait=true", json=order_body(SCENARIOS["happy"], order_id)).json()
        finally:
            pay.delete("/faults/charge")
        assert order["status"] == "COMPLETED", order
        response = api.get(f"/orders/{order_id}/history")
    assert response.status_code == 200, response.text
    events = response.json()
    types = [e["type"] for e in events]
    assert "ExecutionStarted" in types[:3], types
    assert events[-1]["type"] == "ExecutionCompleted" and events[-1]["status"] == "COMPLETED"

    scheduled = [(i, e) for i, e in enumerate(events) if e["type"] == "TaskScheduled" and e["name"] == "charge"]
    assert [e["app"] for _, e in scheduled] == ["payment", "payment"]  # the first attempt, then the retry
    (first_at, first), (retry_at, retry) = scheduled
    failed = next(e for e in events if e["type"] == "TaskFailed" and e["task_id"] == first["task_id"])
    assert "injected fault: charge fails transiently" in failed["failure"]
    assert any(e["type"] == "TaskCompleted" and e["task_id"] == retry["task_id"] for e in events)
    # The backoff between the attempts is a durable timer: created, then fired, before the retry is scheduled.
    between = events[first_at:retry_at]
    timer = next(e for e in between if e["type"] == "TimerCreated")
    assert any(e["type"] == "TimerFired" and e["task_id"] == timer["task_id"] for e in between)
    # Inputs stay out: the history holds no payment token.
    assert "tok_visa" not in response.text


def test_the_history_of_an_unknown_order_is_a_404_problem(system):
    response = httpx.get(f"{system.urls['order-api']}/orders/no-such-order/history", timeout=30)
    assert response.status_code == 404
    assert response.headers["content-type"].startswith("application/problem+json")
    assert response.json()["detail"] == "no order 'no-such-order'"
