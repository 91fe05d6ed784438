"""The order saga, every branch, driven step by step through the fake workflow context (no sidecar, no I/O)."""

from __future__ import annotations

import logging
from datetime import datetime, timedelta

import pytest
from dapr.ext import workflow as wf

from common.contracts import (
    CustodyCheck,
    NotifyResult,
    RiskDecision,
    SagaRetry,
    StepResult,
    UndoResult,
    ValidateOrderResult,
)
from orchestrator.domain import RECORD_ORDER_STATUS, OrderSagaInput
from orchestrator.saga import order_saga
from tests.support.fake_workflow import Boom, FakeWorkflowContext
from tests.support.sagas import FORWARD, HAPPY, ORDER, saga


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
        ("risk_review", "payment"),
        ("charge", "payment"),
        ("ship", "shipping"),
        ("notify", "notification"),
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
        "detail": "Your order is confirmed and on its way.",
        "idempotency_key": "order-1:notify",
    }


def test_the_saga_records_no_status_itself_its_output_says_what_the_order_api_records():
    ctx, out = saga()

    assert RECORD_ORDER_STATUS not in ctx.names()  # RUNNING and the end are recorded by the order-api
    assert out["status"] == "COMPLETED" and out["total_cents"] == 4_250 and out["failure"] is None
    assert [s["name"] for s in out["steps"]] == [*FORWARD, "notify"]


def test_the_cancel_is_polled_at_each_check_and_never_waited_for_outside_a_wait_on_a_person():
    # A wait for the cancel would make the SDK schedule a sentinel timer (a scheduler job per saga on daprd).
    ctx, _ = saga()

    assert ctx.events_waited == [] and ctx.timers == []
    assert set(ctx.events_polled) == {"cancel"} and len(ctx.events_polled) == 2 * len(FORWARD)  # before and after each


def test_a_saga_started_before_the_lean_patch_still_records_its_end_last_as_its_history_says():
    ctx, out = saga(patched={"running-recorded-by-order-api", "risk-review-before-charge"})
    [record] = [c.input for c in ctx.calls if c.name == RECORD_ORDER_STATUS]

    assert ctx.calls[-1].name == RECORD_ORDER_STATUS
    assert record["status"] == "COMPLETED" and record["total_cents"] == 4_250
    assert record["saga"]["steps"] == out["steps"]
    assert ctx.events_waited == ["cancel"] and ctx.events_polled == []  # its cancel is a wait, as it was


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
        "approved": False,
    }
    assert records[1]["status"] == "COMPLETED" and records[1]["total_cents"] == 4_250
    assert records[1]["saga"]["steps"] == out["steps"]


def test_a_rejected_order_undoes_nothing_and_tells_the_customer():
    ctx, out = saga(validate_order=ValidateOrderResult(ok=False, reason="unknown sku NOPE"))

    assert business(ctx) == ["validate_order", "notify"]
    assert out["status"] == "REJECTED"
    assert out["failure"] == {"step": "validate_order", "reason": "unknown sku NOPE"}
    assert out["compensations"] == []
    assert ctx.calls[-1].input["kind"] == "order_failed"
    assert ctx.calls[-1].input["detail"].startswith("We could not accept your order")


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

    assert business(ctx)[4:] == ["refund", "release_inventory", "notify"]
    assert [c.app_id for c in ctx.calls[4:6]] == ["payment", "inventory"]
    assert ctx.calls[4].input["idempotency_key"] == "order-1:refund"
    assert out["status"] == "COMPENSATED"
    assert out["failure"] == {"step": "charge", "reason": "card declined"}
    assert outcomes(out, "compensations") == [("refund", "nothing_to_undo"), ("release_inventory", "undone")]
    assert outcomes(out, "steps")[3] == ("charge", "refused")


def test_an_undeliverable_order_cancels_the_shipment_refunds_and_releases_in_that_order():
    ctx, out = saga(ship=StepResult(ok=False, reason="address undeliverable"))

    assert business(ctx)[5:] == ["cancel_shipment", "refund", "release_inventory", "notify"]
    assert out["status"] == "COMPENSATED"
    assert outcomes(out, "compensations") == [
        ("cancel_shipment", "undone"),
        ("refund", "undone"),
        ("release_inventory", "undone"),
    ]


def test_a_step_retried_until_it_succeeds_shows_its_attempts_and_completes():
    _, out = saga(charge=[Boom("timeout"), Boom("timeout"), StepResult(ok=True)])

    assert out["status"] == "COMPLETED"
    assert out["steps"][3]["attempts"] == 3 and out["steps"][3]["outcome"] == "succeeded"


def test_a_technical_failure_that_outlasts_the_retries_unwinds_including_the_failed_steps_own_undo():
    ctx, out = saga(charge=Boom("payment gateway unreachable", "ConnectError"))

    # The charge may have happened before it timed out, so its refund runs too.
    assert business(ctx)[4:] == ["refund", "release_inventory", "notify"]
    assert out["status"] == "COMPENSATED"
    assert out["failure"] == {"step": "charge", "reason": "ConnectError: payment gateway unreachable"}
    assert out["steps"][3] | {"started_at": None, "finished_at": None} == {
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
    assert business(ctx)[5:] == ["cancel_shipment", "refund", "release_inventory", "notify"]
    assert out["status"] == "COMPENSATED" and out["steps"][4]["attempts"] == 1


def test_a_validation_that_keeps_crashing_fails_the_order_without_calling_it_rejected():
    ctx, out = saga(validate_order=Boom("inventory db down"))

    assert business(ctx) == ["validate_order", "notify"]
    assert out["status"] == "COMPENSATED" and out["failure"]["step"] == "validate_order"


def test_an_undo_that_fails_after_its_retries_ends_in_compensation_failed_naming_it_while_later_undos_run():
    ctx, out = saga(ship=StepResult(ok=False, reason="undeliverable"), refund=Boom("ledger locked", "DBError"))

    assert business(ctx)[5:] == ["cancel_shipment", "refund", "release_inventory", "notify"]
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
    assert ctx.calls[-1].input["kind"] == "order_failed"


def told(ctx: FakeWorkflowContext) -> str:
    """What the notification told the customer."""
    return next(c.input["detail"] for c in ctx.calls if c.name == "notify")


@pytest.mark.parametrize(
    ("script", "expected"),
    [
        ({"charge": StepResult(ok=False, reason="card declined")}, "Your payment was declined"),
        ({"reserve_inventory": StepResult(ok=False, reason="out of stock: BOOK-1")}, "out of stock"),
        ({"ship": StepResult(ok=False, reason="address undeliverable")}, "We cannot deliver to your address"),
        ({"ship": Boom("injected fault: ship fails permanently", "NonRetryableError")}, "We could not ship your order"),
        ({"charge": Boom("payment gateway unreachable")}, "a problem on our side"),
        ({"ship": StepResult(ok=False, reason="undeliverable"), "refund": Boom("ledger locked")}, "looking into it"),
    ],
)
def test_the_customer_is_told_a_plain_sentence_per_outcome_never_the_technical_reason(script, expected):
    ctx, out = saga(**script)

    assert expected in told(ctx)
    assert out["failure"]["reason"] not in told(ctx)
    assert "Error" not in told(ctx) and "injected" not in told(ctx)


def test_a_cancelled_order_tells_the_customer_it_was_cancelled():
    ctx, _ = saga(cancel_during="charge")
    assert told(ctx) == "Your order has been cancelled as you asked; any payment has been refunded."


def test_a_cancel_before_the_first_step_cancels_with_nothing_to_undo():
    ctx, out = saga(cancel_at_start=True)

    assert business(ctx) == ["notify"]
    assert out["status"] == "CANCELLED"
    assert out["failure"] == {"step": "validate_order", "reason": "cancelled on request"}
    assert ctx.events_polled == ["cancel"]  # the first check took it


def test_a_cancel_while_the_charge_is_in_flight_lets_it_finish_then_refunds_and_releases():
    ctx, out = saga(cancel_during="charge", cancel_data={"reason": "customer changed their mind"})

    assert business(ctx) == [
        "validate_order",
        "reserve_inventory",
        "risk_review",
        "charge",
        "refund",
        "release_inventory",
        "notify",
    ]
    assert out["status"] == "CANCELLED"
    assert out["failure"] == {"step": "charge", "reason": "customer changed their mind"}
    assert outcomes(out, "steps")[3] == ("charge", "succeeded")


def test_a_cancel_while_the_last_step_is_in_flight_still_cancels_the_shipment():
    ctx, out = saga(cancel_during="ship")

    assert business(ctx)[5:] == ["cancel_shipment", "refund", "release_inventory", "notify"]
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

    assert business(ctx)[4:] == ["refund", "release_inventory", "notify"]
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
    # The records around a wait on a person failed; the output (what the API reconciles from) says so.
    _, out = saga(risk_review=REVIEW, events=APPROVED, **{RECORD_ORDER_STATUS: Boom("orders db down")})

    assert out["status"] == "COMPLETED"
    assert out["warnings"] == ["record_order_status failed: ConnectionError: orders db down"] * 2
    assert all(s["name"] != RECORD_ORDER_STATUS for s in out["steps"])
    # A saga from before the lean patch recorded its end, which failed too; one from before every patch also RUNNING.
    _, old = saga(patched={"running-recorded-by-order-api"}, **{RECORD_ORDER_STATUS: Boom("orders db down")})
    assert old["warnings"] == ["record_order_status failed: ConnectionError: orders db down"]
    _, older = saga(patched=False, **{RECORD_ORDER_STATUS: Boom("orders db down")})
    assert older["warnings"] == ["record_order_status failed: ConnectionError: orders db down"] * 2


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


def test_the_custom_status_is_set_once_before_each_wait_and_once_at_the_end_not_at_every_change():
    # The engine keeps the last status set in a turn; a turn ends where the saga waits (or returns).
    for script in ({}, {"charge": StepResult(ok=False, reason="card declined")}):
        ctx, out = saga(**script)
        assert len(ctx.statuses) == len(ctx.calls) + 1  # one per activity or child waited for, and the end
        assert ctx.statuses[-1] == out


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


# --- the risk review (payment's child workflow) and a person's decision ------------------------------------------

REVIEW = RiskDecision("review", "total 42.50 is above 40.00", {"first_order": True}, CustodyCheck(True, ["ok"]))
APPROVED = {"approval": {"approved": True, "reviewer": "grace", "note": "known customer"}}


def statuses_recorded(ctx: FakeWorkflowContext) -> list[tuple[str, bool]]:
    return [(c.input["status"], c.input["approved"]) for c in ctx.calls if c.name == RECORD_ORDER_STATUS]


def test_the_risk_review_is_a_child_workflow_on_payment_handed_the_sagas_lineage_before_the_charge():
    ctx, out = saga()
    [review] = [c for c in ctx.calls if c.name == "risk_review"]

    assert (review.kind, review.app_id, review.instance_id) == ("workflow", "payment", "order-1:risk_review")
    assert review.propagation is wf.PropagationScope.LINEAGE
    assert review.input == {
        "order_id": "order-1",
        "customer_id": "cust-7",
        "amount_cents": 4_250,  # as validate_order priced it
        "idempotency_key": "order-1:risk_review",
        "retry": {"first_interval_ms": 100, "max_attempts": 3, "backoff": 2.0, "max_interval_ms": 1000},
    }
    assert review.retry_policy.max_number_of_attempts == 3
    # Pushed before the review: the refund only once the review let the charge go ahead.
    assert [c.name for c in ctx.calls].index("risk_review") < [c.name for c in ctx.calls].index("charge")
    step = out["steps"][2]
    assert (step["name"], step["kind"], step["app"], step["outcome"]) == (
        "risk_review",
        "workflow",
        "payment",
        "succeeded",
    )
    assert step["instance_id"] == "order-1:risk_review" and step["decision"] == "approve"
    assert step["custody"] == {"ok": True, "checks": [], "reason": None}
    assert "approval" not in out and ctx.timers == []


def test_a_risk_review_that_rejects_releases_the_reservation_and_rejects_the_order_with_its_reason():
    reject = RiskDecision("reject", "total 1500.00 is above the card limit, 1000.00", {}, CustodyCheck(True))
    ctx, out = saga(risk_review=reject)

    assert business(ctx) == ["validate_order", "reserve_inventory", "risk_review", "release_inventory", "notify"]
    assert out["status"] == "REJECTED"
    assert out["failure"] == {"step": "risk_review", "reason": "total 1500.00 is above the card limit, 1000.00"}
    assert outcomes(out, "compensations") == [("release_inventory", "undone")]
    assert told(ctx).startswith("We are sorry: after reviewing your order we cannot accept it")


def test_a_broken_chain_of_custody_is_a_rejection_like_any_other():
    broken = CustodyCheck(False, [], "asked to approve 1.00, but validate_order priced the order at 42.50")
    ctx, out = saga(risk_review=RiskDecision("reject", f"chain of custody broken: {broken.reason}", {}, broken))

    assert out["status"] == "REJECTED" and "chain of custody broken" in out["failure"]["reason"]
    assert out["steps"][2]["custody"]["ok"] is False
    assert "charge" not in ctx.names()


def test_a_risk_review_that_keeps_failing_unwinds_as_a_failed_step():
    ctx, out = saga(risk_review=Boom("assess_risk failed", "RiskReviewFailed"))

    assert business(ctx)[3:] == ["release_inventory", "notify"]
    assert out["status"] == "COMPENSATED" and out["failure"]["step"] == "risk_review"
    assert out["steps"][2]["attempts"] == 3


def test_an_order_under_review_waits_for_a_person_until_a_deadline_and_shows_it():
    ctx, _ = saga(risk_review=REVIEW, events=APPROVED)

    [deadline] = ctx.timers
    waiting = next(s for s in ctx.statuses if s["status"] == "AWAITING_APPROVAL")
    assert waiting["approval"]["state"] == "waiting" and waiting["approval"]["reason"] == "total 42.50 is above 40.00"
    # approval_timeout_seconds (the input's default, 24 h) from the start of the wait.
    started = datetime.fromisoformat(waiting["approval"]["requested_at"])
    assert datetime.fromisoformat(waiting["approval"]["deadline"]) - started == timedelta(hours=24)
    assert deadline == datetime.fromisoformat(waiting["approval"]["deadline"]).replace(tzinfo=None)
    assert waiting["steps"][-1] | {"started_at": 0} == {
        "name": "approval",
        "app": None,
        "kind": "wait",
        "outcome": "waiting",
        "started_at": 0,
        "deadline": waiting["approval"]["deadline"],
    }
    assert ctx.events_waited == ["cancel", "approval"]


def test_an_approved_order_records_the_wait_and_the_approval_then_is_charged_and_completes():
    ctx, out = saga(risk_review=REVIEW, events=APPROVED)

    assert business(ctx)[3:] == ["charge", "ship", "notify"]
    # The row follows: AWAITING_APPROVAL while waiting, RUNNING again once approved (a later stage); the order-api
    # records the end from the output.
    assert statuses_recorded(ctx) == [("AWAITING_APPROVAL", False), ("RUNNING", True)]
    assert out["status"] == "COMPLETED"
    assert out["approval"] | {"requested_at": 0, "deadline": 0, "decided_at": 0} == {
        "state": "approved",
        "reason": "total 42.50 is above 40.00",
        "reviewer": "grace",
        "note": "known customer",
        "requested_at": 0,
        "deadline": 0,
        "decided_at": 0,
    }
    assert outcomes(out, "steps")[3] == ("approval", "succeeded")


def test_an_order_a_person_rejects_is_rejected_with_their_reason_and_its_reservation_released():
    ctx, out = saga(risk_review=REVIEW, events={"approval": {"approved": False, "reviewer": "grace", "note": "fraud"}})

    assert business(ctx)[3:] == ["release_inventory", "notify"]
    assert out["status"] == "REJECTED"
    assert out["failure"] == {"step": "approval", "reason": "rejected by grace: fraud"}
    assert out["approval"]["state"] == "rejected"
    assert statuses_recorded(ctx) == [("AWAITING_APPROVAL", False)]


def test_an_order_nobody_decides_on_before_the_deadline_is_rejected_and_unwound():
    ctx, out = saga(risk_review=REVIEW)

    assert business(ctx)[3:] == ["release_inventory", "notify"]
    assert out["status"] == "REJECTED"
    assert out["failure"]["step"] == "approval"
    assert out["failure"]["reason"] == f"no decision before the deadline, {out['approval']['deadline']}"
    assert out["approval"]["state"] == "timed_out"
    assert told(ctx).startswith("We are sorry: after reviewing your order")


def test_a_decision_without_approved_true_is_a_rejection():
    _, out = saga(risk_review=REVIEW, events={"approval": {"approved": "yes"}})
    assert out["status"] == "REJECTED" and out["failure"]["reason"] == "rejected by a person"


def test_a_cancel_while_awaiting_approval_ends_the_wait_and_releases_the_reservation():
    ctx, out = saga(risk_review=REVIEW, cancel_during="approval")

    assert business(ctx)[3:] == ["release_inventory", "notify"]
    assert out["status"] == "CANCELLED"
    assert out["failure"] == {"step": "approval", "reason": "cancelled on request"}
    assert outcomes(out, "steps")[3] == ("approval", "cancelled")
    assert out["approval"]["state"] == "cancelled"


def test_a_cancel_while_the_risk_review_runs_lets_it_finish_then_unwinds():
    ctx, out = saga(risk_review=REVIEW, cancel_during="risk_review")

    assert business(ctx)[3:] == ["release_inventory", "notify"]
    assert out["status"] == "CANCELLED" and out["failure"]["step"] == "risk_review"
    assert ctx.timers == []


def test_the_approval_deadline_is_the_one_fixed_in_the_input_when_the_order_was_accepted():
    order = OrderSagaInput.model_validate({**ORDER.model_dump(), "approval_timeout_seconds": 90})
    ctx = FakeWorkflowContext(script={**HAPPY, "risk_review": REVIEW})
    out = ctx.run(order_saga, order)

    approval = out["approval"]
    assert datetime.fromisoformat(approval["deadline"]) - datetime.fromisoformat(approval["requested_at"]) == timedelta(
        seconds=90
    )


def test_a_saga_started_before_the_risk_review_was_added_goes_on_to_the_charge_without_it():
    ctx, out = saga(patched={"running-recorded-by-order-api"}, risk_review=REVIEW)

    assert business(ctx) == ["validate_order", "reserve_inventory", "charge", "ship", "notify"]
    assert out["status"] == "COMPLETED"
