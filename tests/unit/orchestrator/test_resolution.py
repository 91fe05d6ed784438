"""The operator's resolution of a failed saga workflow (``resolve_order``), driven through the fake workflow context,
and how an order whose workflow failed outside the saga is shown (``WORKFLOW_FAILED``)."""

from __future__ import annotations

from datetime import UTC, datetime

from common.contracts import NotifyResult, UndoResult
from orchestrator.domain import RECORD_ORDER_STATUS, ResolveInput
from orchestrator.resolution import CUSTOMER_NOTICE, EVERY_UNDO, resolve_order
from orchestrator.views import WorkflowView, order_view
from tests.support.fake_workflow import Boom, FakeWorkflowContext
from tests.support.sagas import saga

CAUSE = {"step": "ship", "reason": "the workflow failed: DAPR_WORKFLOW_HISTORY_TAMPERED: events digest mismatch"}
REQUEST = ResolveInput(
    order_id="order-1",
    email="ada@example.com",
    cause=CAUSE,
    saga={"steps": [{"name": "ship", "outcome": "running"}]},
)
UNDONE = {
    "release_inventory": UndoResult("undone"),
    "refund": UndoResult("undone"),
    "cancel_shipment": UndoResult("nothing_to_undo"),
}


def resolve(**script) -> tuple[FakeWorkflowContext, dict]:
    ctx = FakeWorkflowContext(script={**UNDONE, "notify": NotifyResult(sent=True), RECORD_ORDER_STATUS: None, **script})
    return ctx, ctx.run(resolve_order, REQUEST)


def test_every_undo_the_saga_can_push_is_in_the_resolution_in_the_order_the_saga_pushes_them():
    ctx, _ = saga(ship=Boom("down", "NonRetryableError"))  # a saga that pushed every undo, then unwound them
    unwound = [(c.name, c.app_id) for c in ctx.calls if c.name in {name for name, _ in EVERY_UNDO}]
    assert list(reversed(unwound)) == list(EVERY_UNDO)


def test_a_resolution_runs_every_undo_newest_first_with_the_sagas_keys_and_ends_compensated():
    ctx, out = resolve()
    undos = [c for c in ctx.calls if c.name in {"cancel_shipment", "refund", "release_inventory"}]
    assert [(c.name, c.app_id) for c in undos] == [
        ("cancel_shipment", "shipping"),
        ("refund", "payment"),
        ("release_inventory", "inventory"),
    ]
    assert [c.input for c in undos] == [{"order_id": "order-1", "idempotency_key": f"order-1:{c.name}"} for c in undos]
    assert (out["status"], out["failure"]) == ("COMPENSATED", CAUSE)
    assert [(c["name"], c["outcome"]) for c in out["compensations"]] == [
        ("cancel_shipment", "nothing_to_undo"),
        ("refund", "undone"),
        ("release_inventory", "undone"),
    ]
    assert out["resolved_at"] == "2030-01-02T03:04:08+00:00"


def test_the_customer_is_told_in_a_plain_sentence_under_a_key_of_its_own_and_the_order_records_the_resolution():
    ctx, out = resolve()
    notify = next(c for c in ctx.calls if c.name == "notify")
    assert notify.input["kind"] == "order_failed"
    assert notify.input["detail"] == CUSTOMER_NOTICE and "DAPR" not in CUSTOMER_NOTICE
    assert notify.input["idempotency_key"] == "order-1:notify-resolution"
    record = ctx.calls[-1]
    assert (record.name, record.app_id) == (RECORD_ORDER_STATUS, None)
    assert record.input["status"] == "COMPENSATED"
    assert record.input["failure"] == CAUSE
    assert record.input["saga"]["steps"] == REQUEST.saga["steps"]  # what the failed saga did, kept with the order
    assert record.input["saga"]["resolution"] == out
    assert record.input["saga"]["compensations"] == out["compensations"]


def test_an_undo_still_failing_leaves_the_order_compensation_failed_and_the_other_undos_still_run():
    ctx, out = resolve(refund=Boom("ledger down"))
    assert out["status"] == "COMPENSATION_FAILED"
    assert [(c["name"], c["outcome"]) for c in out["compensations"]] == [
        ("cancel_shipment", "nothing_to_undo"),
        ("refund", "failed"),
        ("release_inventory", "undone"),
    ]
    assert ctx.calls[-1].input["status"] == "COMPENSATION_FAILED"


ROW = {
    "order_id": "order-1",
    "status": "RUNNING",
    "customer_id": "cust-1",
    "email": "ada@example.com",
    "total_cents": None,
    "items": [{"sku": "SKU-MUG", "quantity": 1}],
    "failure": None,
    "saga": None,
    "created_at": datetime(2030, 1, 1, tzinfo=UTC),
    "updated_at": datetime(2030, 1, 1, tzinfo=UTC),
}
LIVE = {
    "status": "RUNNING",
    "steps": [{"name": "charge", "outcome": "succeeded"}, {"name": "ship", "outcome": "running"}],
}


def test_a_workflow_failed_outside_the_saga_shows_workflow_failed_at_the_step_it_was_at_with_the_engines_reason():
    workflow = WorkflowView("FAILED", LIVE, None, "DAPR_WORKFLOW_HISTORY_TAMPERED: events digest mismatch")
    view = order_view(ROW, workflow)
    assert view.status == "WORKFLOW_FAILED"
    assert view.failure == {
        "step": "ship",
        "reason": "the workflow failed: DAPR_WORKFLOW_HISTORY_TAMPERED: events digest mismatch",
    }
    assert view.workflow == {"runtime_status": "FAILED", "failure": workflow.failure}


def test_a_terminated_saga_workflow_is_workflow_failed_too_but_a_saga_that_concluded_is_not():
    terminated = order_view(ROW, WorkflowView("TERMINATED", LIVE, None, None))
    assert (terminated.status, terminated.failure) == (
        "WORKFLOW_FAILED",
        {"step": "ship", "reason": "the workflow terminated: terminated"},
    )
    concluded = {"status": "COMPENSATED", "failure": {"step": "ship", "reason": "no"}, "steps": [], "compensations": []}
    assert order_view(ROW, WorkflowView("COMPLETED", None, concluded, None)).status == "COMPENSATED"
    assert order_view(ROW, WorkflowView("RUNNING", LIVE, None, None)).status == "RUNNING"


def test_a_resolved_order_shows_the_resolutions_undos_and_keeps_its_cause():
    resolution = {
        "status": "COMPENSATED",
        "compensations": [{"name": "refund", "outcome": "undone"}],
        "resolved_at": "t",
    }
    row = {
        **ROW,
        "status": "COMPENSATED",
        "failure": CAUSE,
        "saga": {**LIVE, "compensations": resolution["compensations"], "resolution": resolution},
    }
    view = order_view(row, WorkflowView("FAILED", LIVE, None, "tampered"))
    assert (view.status, view.failure) == ("COMPENSATED", CAUSE)
    assert view.compensations == [{"name": "refund", "outcome": "undone"}]
    assert view.resolution == {
        "status": "COMPENSATED",
        "compensations": resolution["compensations"],
        "resolved_at": "t",
    }
