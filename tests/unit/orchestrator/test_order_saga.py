"""The order saga, every branch, driven step by step through the fake workflow context (no sidecar, no I/O)."""

from __future__ import annotations

import logging

from common.contracts import NotifyResult, SagaRetry, StepResult, UndoResult, ValidateOrderResult
from orchestrator.domain import RECORD_ORDER_STATUS, OrderSagaInput
from tests.support.fake_workflow import Boom, FakeWorkflowContext
from tests.support.sagas import FORWARD, ORDER, saga


def business(ctx: FakeWorkflowContext) -> list[str]:
    """The calls minus the order-api's own bookkeeping."""
    return [n for n in ctx.names() if n != RECORD_ORDER_STATUS]


def outcomes(summary: dict, key: str) -> list[tuple[str, str]]:
    return [(s["name"], s["outcome"]) for s in summary[key]]


def test_the_happy_path_calls_every_step_in_order_on_the_app_that_owns_it_and_completes():
    ctx, out = saga()

    assert ctx.route() == [
        ("validate_order", "inventory"),
        ("reserve_inventory", "inventory"),
        ("charge", "payment"),
        ("ship", "shipping"),
        ("notify", "notification"),
        (RECORD_ORDER_STATUS, None),
    ]
    assert out["status"] == "COMPLETED" and out["failure"] is None
    assert out["total_cents"] == 4_250
    assert outcomes(out, "steps") == [(n, "succeeded") for n in [*FORWARD, "notify"]]
    assert out["compensations"] == []  # committed: the undos will never run


def test_every_call_carries_the_retry_policy_from_the_input_and_keys_derived_from_the_order():
    ctx, _ = saga()
    inputs = {c.name: c.input for c in ctx.calls}

    assert all(c.retry_policy.max_number_of_attempts == 3 for c in ctx.calls)
    assert all(c.retry_policy.first_retry_interval.total_seconds() == 0.1 for c in ctx.calls)
    assert inputs["reserve_inventory"] == {
        "order_id": "order-1",
        "idempotency_key": "order-1:reserve_inventory",
        "items": [{"sku": "BOOK-1", "quantity": 2}, {"sku": "PEN-3", "quantity": 1}],
    }
    assert inputs["charge"] == {
        "order_id": "order-1",
        "customer_id": "cust-7",
        "amount_cents": 4_250,
        "token": "tok_visa",
        "idempotency_key": "order-1:charge",
    }
    assert inputs["ship"]["address"]["city"] == "Lisbon" and inputs["ship"]["idempotency_key"] == "order-1:ship"
    assert inputs["notify"] == {
        "order_id": "order-1",
        "email": "ada@example.com",
        "kind": "order_confirmed",
        "detail": None,
        "idempotency_key": "order-1:notify",
    }


def test_the_saga_records_the_terminal_status_last_with_the_summary_and_leaves_running_to_the_order_api():
    ctx, out = saga()
    [record] = [c.input for c in ctx.calls if c.name == RECORD_ORDER_STATUS]

    assert ctx.calls[-1].name == RECORD_ORDER_STATUS
    assert record["status"] == "COMPLETED" and record["total_cents"] == 4_250
    assert record["saga"]["steps"] == out["steps"]


def test_a_saga_started_before_the_patch_still_records_running_first_as_its_history_says():
    ctx, out = saga(patched=False)
    records = [c.input for c in ctx.calls if c.name == RECORD_ORDER_STATUS]

    assert ctx.calls[0].name == RECORD_ORDER_STATUS
    assert records[0] == {
        "order_id": "order-1",
        "status": "RUNNING",
        "failure": None,
        "total_cents": None,
        "saga": None,
    }
    assert records[1]["status"] == "COMPLETED" and records[1]["total_cents"] == 4_250
    assert records[1]["saga"]["steps"] == out["steps"]


def test_a_rejected_order_undoes_nothing_and_tells_the_customer():
    ctx, out = saga(validate_order=ValidateOrderResult(ok=False, reason="unknown sku NOPE"))

    assert business(ctx) == ["validate_order", "notify"]
    assert out["status"] == "REJECTED"
    assert out["failure"] == {"step": "validate_order", "reason": "unknown sku NOPE"}
    assert out["compensations"] == []
    assert ctx.calls[-2].input["kind"] == "order_failed" and ctx.calls[-2].input["detail"] == "unknown sku NOPE"


def test_out_of_stock_releases_the_reservation_only():
    ctx, out = saga(reserve_inventory=StepResult(ok=False, reason="out of stock: BOOK-1"))

    assert business(ctx) == ["validate_order", "reserve_inventory", "release_inventory", "notify"]
    assert ctx.calls[2].app_id == "inventory"
    assert ctx.calls[2].input == {"order_id": "order-1", "idempotency_key": "order-1:release_inventory"}
    assert out["status"] == "COMPENSATED"
    assert out["failure"] == {"step": "reserve_inventory", "reason": "out of stock: BOOK-1"}
    assert outcomes(out, "compensations") == [("release_inventory", "undone")]


def test_a_declined_charge_refunds_then_releases_last_in_first_out():
    ctx, out = saga(charge=StepResult(ok=False, reason="card declined"), refund=UndoResult("nothing_to_undo"))

    assert business(ctx)[3:] == ["refund", "release_inventory", "notify"]
    assert [c.app_id for c in ctx.calls[3:5]] == ["payment", "inventory"]
    assert ctx.calls[3].input["idempotency_key"] == "order-1:refund"
    assert out["status"] == "COMPENSATED"
    assert out["failure"] == {"step": "charge", "reason": "card declined"}
    assert outcomes(out, "compensations") == [("refund", "nothing_to_undo"), ("release_inventory", "undone")]
    assert outcomes(out, "steps")[2] == ("charge", "refused")


def test_an_undeliverable_order_cancels_the_shipment_refunds_and_releases_in_that_order():
    ctx, out = saga(ship=StepResult(ok=False, reason="address undeliverable"))

    assert business(ctx)[4:] == ["cancel_shipment", "refund", "release_inventory", "notify"]
    assert out["status"] == "COMPENSATED"
    assert outcomes(out, "compensations") == [
        ("cancel_shipment", "undone"),
        ("refund", "undone"),
        ("release_inventory", "undone"),
    ]


def test_a_step_retried_until_it_succeeds_shows_its_attempts_and_completes():
    _, out = saga(charge=[Boom("timeout"), Boom("timeout"), StepResult(ok=True)])

    assert out["status"] == "COMPLETED"
    assert out["steps"][2]["attempts"] == 3 and out["steps"][2]["outcome"] == "succeeded"


def test_a_technical_failure_that_outlasts_the_retries_unwinds_including_the_failed_steps_own_undo():
    ctx, out = saga(charge=Boom("payment gateway unreachable", "ConnectError"))

    # The charge may have happened before it timed out, so its refund runs too.
    assert business(ctx)[3:] == ["refund", "release_inventory", "notify"]
    assert out["status"] == "COMPENSATED"
    assert out["failure"] == {"step": "charge", "reason": "ConnectError: payment gateway unreachable"}
    assert out["steps"][2] | {"started_at": None, "finished_at": None} == {
        "name": "charge",
        "app": "payment",
        "outcome": "failed",
        "attempts": 3,
        "reason": "ConnectError: payment gateway unreachable",
        "started_at": None,
        "finished_at": None,
    }


def test_a_permanent_failure_is_not_retried_and_unwinds_at_once():
    ctx, out = saga(ship=Boom("injected fault: ship fails permanently", "NonRetryableError"))

    assert [c.attempts for c in ctx.calls if c.name == "ship"] == [1]
    assert business(ctx)[4:] == ["cancel_shipment", "refund", "release_inventory", "notify"]
    assert out["status"] == "COMPENSATED" and out["steps"][3]["attempts"] == 1


def test_a_validation_that_keeps_crashing_fails_the_order_without_calling_it_rejected():
    ctx, out = saga(validate_order=Boom("inventory db down"))

    assert business(ctx) == ["validate_order", "notify"]
    assert out["status"] == "COMPENSATED" and out["failure"]["step"] == "validate_order"


def test_an_undo_that_fails_after_its_retries_ends_in_compensation_failed_naming_it_while_later_undos_run():
    ctx, out = saga(ship=StepResult(ok=False, reason="undeliverable"), refund=Boom("ledger locked", "DBError"))

    assert business(ctx)[4:] == ["cancel_shipment", "refund", "release_inventory", "notify"]
    assert out["status"] == "COMPENSATION_FAILED"
    assert out["failure"]["step"] == "refund"
    assert out["failure"]["reason"].startswith("DBError: ledger locked")
    assert "ship refused: undeliverable" in out["failure"]["reason"]
    assert outcomes(out, "compensations") == [
        ("cancel_shipment", "undone"),
        ("refund", "failed"),
        ("release_inventory", "undone"),
    ]
    assert out["compensations"][1]["attempts"] == 3
    assert ctx.calls[-2].input["kind"] == "order_failed"


def test_a_cancel_before_the_first_step_cancels_with_nothing_to_undo():
    ctx, out = saga(cancel_at_start=True)

    assert business(ctx) == ["notify"]
    assert out["status"] == "CANCELLED"
    assert out["failure"] == {"step": "validate_order", "reason": "cancelled on request"}
    assert ctx.events_waited == ["cancel"]


def test_a_cancel_while_the_charge_is_in_flight_lets_it_finish_then_refunds_and_releases():
    ctx, out = saga(cancel_during="charge", cancel_data={"reason": "customer changed their mind"})

    assert business(ctx) == ["validate_order", "reserve_inventory", "charge", "refund", "release_inventory", "notify"]
    assert out["status"] == "CANCELLED"
    assert out["failure"] == {"step": "charge", "reason": "customer changed their mind"}
    assert outcomes(out, "steps")[2] == ("charge", "succeeded")


def test_a_cancel_while_the_last_step_is_in_flight_still_cancels_the_shipment():
    ctx, out = saga(cancel_during="ship")

    assert business(ctx)[4:] == ["cancel_shipment", "refund", "release_inventory", "notify"]
    assert out["status"] == "CANCELLED"


def test_a_cancel_that_arrives_while_a_step_is_being_refused_is_still_a_cancel():
    ctx, out = saga(cancel_during="reserve_inventory", reserve_inventory=StepResult(ok=False, reason="out of stock"))

    assert business(ctx)[2:] == ["release_inventory", "notify"]
    assert out["status"] == "CANCELLED"


def test_a_cancel_after_the_order_completed_changes_nothing():
    ctx, out = saga(cancel_during="notify")

    assert out["status"] == "COMPLETED"
    assert "cancel_shipment" not in ctx.names()


def test_a_step_that_finds_its_undo_already_ran_is_treated_as_not_done():
    ctx, out = saga(charge=StepResult(ok=True, cancelled=True))

    assert business(ctx)[3:] == ["refund", "release_inventory", "notify"]
    assert out["status"] == "COMPENSATED"
    assert out["failure"] == {"step": "charge", "reason": "undone before it ran"}


def test_a_notification_that_fails_is_recorded_and_changes_nothing_else():
    ctx, out = saga(notify=Boom("smtp down"))

    assert out["status"] == "COMPLETED" and out["failure"] is None
    assert out["steps"][-1]["name"] == "notify" and out["steps"][-1]["outcome"] == "failed"
    assert "refund" not in ctx.names()


def test_a_notification_the_service_did_not_send_is_recorded_as_refused():
    _, out = saga(notify=NotifyResult(sent=False, detail="bounced"))

    assert out["status"] == "COMPLETED"
    assert out["steps"][-1] | {"started_at": 0, "finished_at": 0} == {
        "name": "notify",
        "app": "notification",
        "outcome": "refused",
        "reason": "bounced",
        "attempts": 1,
        "started_at": 0,
        "finished_at": 0,
    }


def test_failing_bookkeeping_is_a_warning_not_a_failed_order():
    _, out = saga(**{RECORD_ORDER_STATUS: Boom("orders db down")})

    assert out["status"] == "COMPLETED"
    # The terminal record failed; the output (what the API reconciles from) says so.
    assert out["warnings"] == ["record_order_status failed: ConnectionError: orders db down"]
    assert all(s["name"] != RECORD_ORDER_STATUS for s in out["steps"])
    # A saga from before the patch also recorded RUNNING, which failed too.
    _, old = saga(patched=False, **{RECORD_ORDER_STATUS: Boom("orders db down")})
    assert old["warnings"] == ["record_order_status failed: ConnectionError: orders db down"] * 2


def test_the_custom_status_shows_the_stack_and_each_step_as_it_happens():
    ctx, out = saga(charge=StepResult(ok=False, reason="card declined"))

    first = ctx.statuses[0]
    assert first["status"] == "RUNNING" and first["compensations"] == []
    assert outcomes(first, "steps") == [("validate_order", "running")]
    while_charging = next(s for s in ctx.statuses if s["steps"] and s["steps"][-1]["name"] == "charge")
    assert while_charging["steps"][-1]["outcome"] == "running" and "finished_at" not in while_charging["steps"][-1]
    assert outcomes(while_charging, "compensations") == [("refund", "pending"), ("release_inventory", "pending")]
    mid_unwind = next(s for s in ctx.statuses if ("refund", "undone") in outcomes(s, "compensations"))
    assert outcomes(mid_unwind, "compensations") == [("refund", "undone"), ("release_inventory", "pending")]
    assert ctx.statuses[-1] == out
    assert len(str(ctx.statuses[-1])) < 2_000  # small enough to read in `dapr workflow get`


def test_the_same_script_gives_identical_calls_statuses_and_output_every_time():
    script = {
        "charge": [Boom(), StepResult(ok=True)],
        "ship": StepResult(ok=False, reason="undeliverable"),
        "refund": Boom("locked"),
    }
    first_ctx, first = saga(**script)
    second_ctx, second = saga(**script)

    assert [(c.name, c.app_id, c.input, c.attempts) for c in first_ctx.calls] == [
        (c.name, c.app_id, c.input, c.attempts) for c in second_ctx.calls
    ]
    assert first_ctx.statuses == second_ctx.statuses
    assert first == second


def test_the_saga_logs_nothing_while_replaying(caplog):
    with caplog.at_level(logging.INFO, logger="common.saga"):
        saga(is_replaying=True)
    assert caplog.records == []
    with caplog.at_level(logging.INFO, logger="common.saga"):
        saga()
    assert any("order-1: concluded COMPLETED" in r.getMessage() for r in caplog.records)


def test_the_saga_input_round_trips_through_json_with_the_retry_values():
    assert OrderSagaInput.model_validate(ORDER.model_dump()) == ORDER
    assert ORDER.retry == SagaRetry(100, 3, 2.0, 1000)
