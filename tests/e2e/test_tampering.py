"""End-to-end on real daprd (history signing on, as ``make run-dapr`` runs it): the attack Dapr's docs motivate
signing with. A running saga's recorded history is rewritten in the workflow state store between its steps (the
validated total, in the ``validate_order`` result, cut to one cent) while ``ship`` is held by a delay fault; the
order-api's daprd is then SIGKILLed (its supervisor starts it again), so that it loads the history from the store
(daprd checks the signatures when it loads a history: an instance it still holds in memory goes on from there,
see the README). The saga must not go on at the forged value: its workflow fails as tampered, the order says so
(``WORKFLOW_FAILED``, with daprd's reason), and an operator's resolve runs every undo and ends it ``COMPENSATED``.

The store holds each history event as its raw protobuf (``state.postgresql`` v2, table ``state``, key
``order-api||dapr.internal.default.order-api.workflow||<order id>||history-NNNNNN``).
"""

from __future__ import annotations

import asyncio
import json
import signal
from collections.abc import Callable
from typing import Any

import asyncpg
import httpx
import psutil
import pytest
from dapr.ext.workflow._durabletask.internal import history_events_pb2 as events

from common.db import libpq_url
from tests.support.orders import new_id, order_body
from tests.support.orders import until as wait_until

TERMINAL = {"COMPLETED", "COMPENSATED", "REJECTED", "CANCELLED", "COMPENSATION_FAILED"}
FORGED_TOTAL = 1


@pytest.fixture
def api(system):
    if system.engine != "dapr":
        pytest.skip("history signing is daprd's (WorkflowHistorySigning); the sidecar has none")
    with system.client("order-api") as client:
        yield client


def until(probe: Callable[[], Any], what: str, timeout: float = 90) -> Any:
    """``tests.support.orders.until`` with this file's longer default: daprd's tamper checks and restarts."""
    return wait_until(probe, what, timeout)


async def _forge_validated_total(url: str, order_id: str) -> tuple[str, int]:
    """Rewrite the total in the recorded ``validate_order`` result of ``order_id``'s history; (key, real total)."""
    conn = await asyncpg.connect(url)
    try:
        rows = await conn.fetch(
            "SELECT key, value FROM state WHERE key LIKE $1 ORDER BY key", f"order-api||%||{order_id}||history-%"
        )
        for row in rows:
            event = events.HistoryEvent.FromString(bytes(row["value"]))
            if event.WhichOneof("eventType") != "taskCompleted":
                continue
            result = json.loads(event.taskCompleted.result.value)
            if "total_cents" not in result:
                continue
            real = result["total_cents"]
            event.taskCompleted.result.value = json.dumps({**result, "total_cents": FORGED_TOTAL})
            await conn.execute("UPDATE state SET value = $2 WHERE key = $1", row["key"], event.SerializeToString())
            return row["key"], real
    finally:
        await conn.close()
    raise AssertionError(f"no validate_order result recorded for {order_id} among {len(rows)} history rows")


def _app_id(process: psutil.Process) -> str | None:
    command = process.cmdline()
    return command[command.index("--app-id") + 1] if "--app-id" in command else None


def _kill_order_api_daprd(system) -> int:
    daprd = [
        p
        for p in psutil.Process(system.process.pid).children(recursive=True)
        if p.name() == "daprd" and _app_id(p) == "order-api"
    ]
    assert len(daprd) == 1, daprd
    daprd[0].send_signal(signal.SIGKILL)
    return daprd[0].pid


def _order_held_at_ship(system, api, prefix: str, delay_ms: int) -> str:
    order_id = new_id(prefix)
    with system.client("shipping") as shipping:
        held = {"mode": "delay", "delay_ms": delay_ms, "order_id": order_id}
        assert shipping.put("/faults/ship", json=held).status_code == 200
    assert api.post("/orders", json=order_body(order_id)).status_code == 202
    until(
        lambda: any(
            s["name"] == "ship" and s["outcome"] == "running" for s in api.get(f"/orders/{order_id}").json()["steps"]
        ),
        f"{order_id} charged and at ship",
    )
    return order_id


def _engine(system, method: str, path: str) -> httpx.Response:
    url = f"{system.engine_url('order-api')}/v1.0/workflows/dapr/{path}"
    return httpx.request(method, url, headers={"dapr-api-token": system.api_token}, timeout=30)


def test_a_history_rewritten_in_the_store_fails_the_saga_as_tampered_until_an_operator_resolves_it(system, api):
    order_id = _order_held_at_ship(system, api, "tampered", 15000)
    store = libpq_url(system.postgres_url, system.workflow_db)
    key, real_total = asyncio.run(_forge_validated_total(store, order_id))
    assert key.startswith(f"order-api||dapr.internal.default.order-api.workflow||{order_id}||history-")
    killed = _kill_order_api_daprd(system)
    with system.client("shipping") as shipping:
        shipping.delete("/faults").raise_for_status()

    order = until(
        lambda: (o := api.get(f"/orders/{order_id}").json())["status"] == "WORKFLOW_FAILED" and o,
        f"{order_id} WORKFLOW_FAILED after its daprd (pid {killed}) restarted",
    )
    assert order["workflow"]["runtime_status"] == "FAILED"
    assert order["failure"]["reason"].startswith("the workflow failed: DAPR_WORKFLOW_HISTORY_TAMPERED: ")
    assert "signature verification failed" in order["failure"]["reason"]
    listed = api.get("/orders", params={"status": "WORKFLOW_FAILED", "limit": 100}).json()["items"]
    assert order_id in [o["order_id"] for o in listed]
    # The order-api may see the history fail verification on a read before daprd's next turn marks it (both are
    # daprd's verdict); daprd marks it when the step's result arrives.
    marked = f"Workflow actor '{order_id}': tampering detected, marking workflow as FAILED"
    until(lambda: marked in system.log_path.read_text(errors="replace"), f"daprd marks {order_id} tampered")

    # Nothing went on at the forged value: the charge is the real total, and no later step ran.
    with system.client("payment") as payment:
        money = payment.get(f"/payments/{order_id}").json()
    assert money["charged_cents"] == real_total != FORGED_TOTAL
    steps = [s["name"] for s in order["steps"]]
    assert steps[-2:] == ["charge", "ship"] and "notify" not in steps, steps

    resolving = api.post(f"/orders/{order_id}/resolve")
    assert resolving.status_code == 202, resolving.text
    done = until(lambda: (o := api.get(f"/orders/{order_id}").json())["status"] in TERMINAL and o, "resolved")
    assert done["status"] == "COMPENSATED" and done["failure"] == order["failure"]
    assert done["resolution"]["status"] == "COMPENSATED"
    undos = {c["name"]: c["outcome"] for c in done["compensations"]}
    assert undos["refund"] == "undone" and undos["release_inventory"] == "undone"
    with system.client("payment") as payment:
        money = payment.get(f"/payments/{order_id}").json()
    assert money["refunded_cents"] == money["charged_cents"] == real_total
    with system.client("inventory") as inventory:
        assert inventory.get(f"/reservations/{order_id}").json()["status"] == "RELEASED"
    with system.client("shipping") as shipping:  # the held ship landed on its undo's tombstone, or was undone
        shipment = until(
            lambda: (
                (r := shipping.get(f"/shipments/{order_id}")).status_code == 404 or r.json()["status"] == "CANCELLED"
            ),
            "no live shipment",
            timeout=30,
        )
        assert shipment


def test_a_history_rewritten_while_daprd_holds_the_workflow_in_memory_is_not_caught_and_leaves_it_unreadable(
    system, api
):
    # What daprd 1.18.2 does when nothing makes it load the history again: it goes on from its own copy (the saga
    # completes with the real values) and signs on over the rewritten rows, so every later read, terminate and
    # purge of the instance fails on the signatures. The order reads as its saga recorded it.
    order_id = _order_held_at_ship(system, api, "cached", 6000)
    store = libpq_url(system.postgres_url, system.workflow_db)
    _, real_total = asyncio.run(_forge_validated_total(store, order_id))
    order = until(lambda: (o := api.get(f"/orders/{order_id}").json())["status"] in TERMINAL and o, "the saga's end")
    assert order["status"] == "COMPLETED" and order["total_cents"] == real_total
    with system.client("payment") as payment:
        assert payment.get(f"/payments/{order_id}").json()["charged_cents"] == real_total
    for method, path in (("GET", order_id), ("POST", f"{order_id}/terminate"), ("POST", f"{order_id}/purge")):
        answer = _engine(system, method, path)
        assert answer.status_code == 500, (path, answer.text)
        assert "workflow history signature verification failed" in answer.text or "failed to fetch workflow" in (
            answer.text
        ), answer.text
