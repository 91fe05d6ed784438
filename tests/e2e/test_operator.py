"""End-to-end, on both engines: a saga workflow that stops outside the saga's own logic (terminated by an operator,
or failed: here by a start with an input the saga refuses, as a bug would) leaves the order WORKFLOW_FAILED with
the engine's reason, in the order and in the list; it cannot be cancelled; an operator's resolve runs every undo
and ends it COMPENSATED, with nothing charged, reserved or shipped. (Tampering, the third way, needs daprd's
history signing: tests/e2e/test_tampering.py.)"""

from __future__ import annotations

import time
from typing import Any

import httpx
import pytest

from tests.support.orders import engine_api, new_id, terminated_at_ship, until

pytestmark = pytest.mark.usefixtures("clear_faults")

TERMINAL = {"COMPLETED", "COMPENSATED", "REJECTED", "CANCELLED", "COMPENSATION_FAILED"}


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
    order_id = new_id("terminated")
    terminated_at_ship(system, order_id)

    order = workflow_failed(api, order_id)
    assert order["failure"] == {"step": "ship", "reason": "the workflow terminated: terminated"}
    assert order["workflow"]["runtime_status"] == "TERMINATED"
    resolve_and_check_nothing_is_left(system, api, order_id, order["failure"])


def test_a_saga_workflow_that_failed_is_workflow_failed_until_an_operator_resolves_it(system, api: httpx.Client):
    order_id = new_id("failed")
    terminated_at_ship(system, order_id)
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
