"""End-to-end, on both engines: a saga workflow that stops outside the saga's own logic (terminated by an operator,
or failed: here by a start with an input the saga refuses, as a bug would) leaves the order WORKFLOW_FAILED with
the engine's reason, in the order and in the list; it cannot be cancelled; an operator's resolve runs every undo
and ends it COMPENSATED, with nothing charged, reserved or shipped. (Tampering, the third way, needs daprd's
history signing: tests/e2e/test_tampering.py.)"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import httpx
import pytest

from tests.support.orders import new_id, order_body

TERMINAL = {"COMPLETED", "COMPENSATED", "REJECTED", "CANCELLED", "COMPENSATION_FAILED"}


@pytest.fixture
def api(system):
    with system.client("order-api") as client:
        yield client


@pytest.fixture(autouse=True)
def no_faults(system):
    yield
    for app in ("inventory", "payment", "shipping", "notification"):
        with system.client(app) as c:
            c.delete("/faults")


def until(probe: Callable[[], Any], what: str, timeout: float = 60) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if value := probe():
            return value
        time.sleep(0.2)
    raise AssertionError(f"not within {timeout:.0f} s: {what}")


def engine_api(system, method: str, path: str, **kwargs: Any) -> httpx.Response:
    """The order-api's engine (its daprd, or the sidecar's listener for it): the workflow HTTP API, with the token."""
    url = f"{system.engine_url('order-api')}/v1.0/workflows/dapr/{path}"
    return httpx.request(method, url, headers={"dapr-api-token": system.api_token}, timeout=30, **kwargs)


def order_at_ship(system, api: httpx.Client, prefix: str) -> str:
    """An order held while ``ship`` runs (a delay fault on it): reserved and charged, not yet shipped."""
    order_id = new_id(prefix)
    with system.client("shipping") as shipping:
        fault = {"mode": "delay", "delay_ms": 3000, "order_id": order_id}
        assert shipping.put("/faults/ship", json=fault).status_code == 200
    assert api.post("/orders", json=order_body(order_id)).status_code == 202
    until(
        lambda: any(
            s["name"] == "ship" and s["outcome"] == "running" for s in api.get(f"/orders/{order_id}").json()["steps"]
        ),
        f"{order_id} at ship",
    )
    return order_id


def workflow_failed(api: httpx.Client, order_id: str) -> dict[str, Any]:
    return until(
        lambda: (o := api.get(f"/orders/{order_id}").json())["status"] == "WORKFLOW_FAILED" and o,
        f"{order_id} WORKFLOW_FAILED",
    )


def resolve_and_check_nothing_is_left(system, api: httpx.Client, order_id: str, cause: dict[str, str]) -> None:
    assert api.post(f"/orders/{order_id}/cancel").status_code == 409
    listed = api.get("/orders", params={"status": "WORKFLOW_FAILED", "limit": 100}).json()["items"]
    assert order_id in [o["order_id"] for o in listed]

    resolving = api.post(f"/orders/{order_id}/resolve")
    assert resolving.status_code == 202, resolving.text
    assert resolving.json()["resolution"]["status"] in ("RUNNING", "COMPENSATED")
    done = until(lambda: (o := api.get(f"/orders/{order_id}").json())["status"] in TERMINAL and o, "resolved")

    assert (done["status"], done["failure"]) == ("COMPENSATED", cause)
    assert done["resolution"]["status"] == "COMPENSATED" and done["resolution"]["resolved_at"]
    undos = {c["name"]: c["outcome"] for c in done["compensations"]}
    assert undos["refund"] == "undone" and undos["release_inventory"] == "undone"
    assert api.post(f"/orders/{order_id}/resolve").status_code == 409
    with system.client("payment") as payment:
        money = payment.get(f"/payments/{order_id}").json()
    assert money["charged_cents"] > 0 and money["refunded_cents"] == money["charged_cents"]
    with system.client("inventory") as inventory:
        assert inventory.get(f"/reservations/{order_id}").json()["status"] == "RELEASED"
    with system.client("shipping") as shipping:  # the ship in flight landed after its undo's tombstone, or was undone
        time.sleep(3)
        shipment = shipping.get(f"/shipments/{order_id}")
        assert shipment.status_code == 404 or shipment.json()["status"] == "CANCELLED", shipment.text
    with system.client("notification") as notification:
        told = notification.get("/notifications", params={"order_id": order_id}).json()
    assert [n["kind"] for n in told] == ["order_failed"]


def test_a_terminated_saga_is_workflow_failed_until_an_operator_resolves_it(system, api: httpx.Client):
    order_id = order_at_ship(system, api, "terminated")
    assert engine_api(system, "POST", f"{order_id}/terminate").status_code == 202

    order = workflow_failed(api, order_id)
    assert order["failure"] == {"step": "ship", "reason": "the workflow terminated: terminated"}
    assert order["workflow"]["runtime_status"] == "TERMINATED"
    resolve_and_check_nothing_is_left(system, api, order_id, order["failure"])


def test_a_saga_workflow_that_failed_is_workflow_failed_until_an_operator_resolves_it(system, api: httpx.Client):
    order_id = order_at_ship(system, api, "failed")
    assert engine_api(system, "POST", f"{order_id}/terminate").status_code == 202
    until(lambda: engine_api(system, "GET", order_id).json().get("runtimeStatus") == "TERMINATED", "terminated")
    # The same instance ID started again with an input the saga refuses: its first turn fails the workflow.
    started = engine_api(system, "POST", f"order_saga/start?instanceID={order_id}", json={"order_id": 7})
    assert started.status_code == 202, started.text

    order = until(
        lambda: (
            (o := api.get(f"/orders/{order_id}").json()).get("workflow")
            and o["workflow"]["runtime_status"] == "FAILED"
            and o
        ),
        f"{order_id} workflow FAILED",
    )
    assert order["status"] == "WORKFLOW_FAILED"
    assert order["failure"]["step"] == "workflow"
    assert order["failure"]["reason"].startswith("the workflow failed: ")
    assert "order_id" in order["failure"]["reason"]  # the contract's refusal names the field
    resolve_and_check_nothing_is_left(system, api, order_id, order["failure"])
