"""Orders as the end-to-end tests send them: a valid body (``order_body``), an order ID of a test's own
(``new_id``), a wait for a condition (``until``), and an order whose saga workflow is stopped at ``ship`` by its
engine's API (``terminated_at_ship``: what makes an order WORKFLOW_FAILED)."""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable
from typing import Any

import httpx


def order_body(order_id: str | None = None, **overrides: Any) -> dict[str, Any]:
    body = {
        "customer_id": "cust-1",
        "email": "ada@example.com",
        "items": [{"sku": "SKU-MUG", "quantity": 1}],
        "payment": {"method": "card", "token": "tok_visa"},
        "shipping_address": {
            "name": "Ada Lovelace",
            "line1": "1 Main St",
            "city": "London",
            "postal_code": "N1 9GU",
            "country": "GB",
        },
    }
    if order_id:
        body["order_id"] = order_id
    body.update(overrides)
    return body


def new_id(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:10]}"


def until(probe: Callable[[], Any], what: str, timeout: float = 60) -> Any:
    """What ``probe()`` returns once it is truthy; AssertionError naming ``what`` after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if value := probe():
            return value
        time.sleep(0.2)
    raise AssertionError(f"not within {timeout:.0f} s: {what}")


def engine_api(system: Any, method: str, path: str, **kwargs: Any) -> httpx.Response:
    """The order-api's engine (its daprd, or the sidecar's listener for it): the workflow HTTP API, with the token."""
    url = f"{system.engine_url('order-api')}/v1.0/workflows/dapr/{path}"
    return httpx.request(method, url, headers={"dapr-api-token": system.api_token}, timeout=30, **kwargs)


def held_at_ship(system: Any, order_id: str, delay_ms: int = 3000) -> None:
    """Submit ``order_id`` with its ``ship`` held by a delay fault; return once ship runs (reserved, charged)."""
    with system.client("shipping") as shipping:
        fault = {"mode": "delay", "delay_ms": delay_ms, "order_id": order_id}
        assert shipping.put("/faults/ship", json=fault).status_code == 200
    with system.client("order-api") as api:
        assert api.post("/orders", json=order_body(order_id)).status_code == 202
        until(
            lambda: any(
                s["name"] == "ship" and s["outcome"] == "running"
                for s in api.get(f"/orders/{order_id}").json()["steps"]
            ),
            f"{order_id} at ship",
        )


def terminated_at_ship(system: Any, order_id: str) -> None:
    """An order whose saga workflow an operator terminated (through the engine's API) while ``ship`` ran."""
    held_at_ship(system, order_id)
    stopped = engine_api(system, "POST", f"{order_id}/terminate")
    assert stopped.status_code == 202, stopped.text
