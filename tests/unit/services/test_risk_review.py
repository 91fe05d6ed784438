"""payment's risk review without a database or an engine: the rule that approves, rejects or leaves an order to a
person; the chain-of-custody check, on plain values and on propagated histories built as the engine sends them
(``lineage``); and the ``risk_review`` workflow itself, driven by the fake workflow context."""

from __future__ import annotations

import json

import dapr.ext.workflow._durabletask.internal.protos as pb
import pytest
from dapr.ext.workflow.propagation import PropagatedHistory, PropagationScope
from google.protobuf import wrappers_pb2

from common.contracts import CustodyCheck, RiskAssessment, RiskReviewInput, SagaRetry
from common.settings import SettingsError
from payment.domain import Call, Caller, PaymentHistory, RiskLimits, assess, check_custody
from payment.settings import load_risk_limits
from payment.workflows import lineage, risk_review
from tests.support.fake_workflow import Boom, FakeWorkflowContext

LIMITS = RiskLimits(review_above_cents=50_000, first_order_review_above_cents=30_000, reject_above_cents=100_000)
RETURNING = PaymentHistory(charged_orders=2)
FIRST = PaymentHistory(charged_orders=0, declined_payments=1)
HELD = CustodyCheck(True, ["..."])

# --- the rule -------------------------------------------------------------------------------------------------


def test_an_order_within_the_limits_is_approved_with_the_facts_it_weighed():
    assessment = assess(12_000, RETURNING, HELD, LIMITS)
    assert assessment == RiskAssessment(
        "approve",
        "total 120.00 is within the limits",
        {"first_order": False, "charged_orders": 2, "declined_payments": 0},
    )


def test_an_order_above_the_review_threshold_waits_for_a_person():
    assert assess(50_001, RETURNING, HELD, LIMITS).decision == "review"
    assert assess(50_000, RETURNING, HELD, LIMITS).decision == "approve"
    assert assess(55_000, RETURNING, HELD, LIMITS).reason == "total 550.00 is above 500.00"


def test_a_first_order_waits_for_a_person_from_a_lower_threshold():
    assert assess(35_000, RETURNING, HELD, LIMITS).decision == "approve"
    first = assess(35_000, FIRST, HELD, LIMITS)
    assert (first.decision, first.reason) == (
        "review",
        "first order of this customer, and its total 350.00 is above 300.00",
    )
    assert first.facts == {"first_order": True, "charged_orders": 0, "declined_payments": 1}


def test_an_order_above_the_card_limit_is_rejected():
    assert assess(100_001, RETURNING, HELD, LIMITS) == RiskAssessment(
        "reject", "total 1000.01 is above the card limit, 1000.00", RETURNING.facts()
    )


def test_a_broken_chain_of_custody_is_rejected_whatever_the_amount():
    broken = CustodyCheck(False, [], "asked to approve 1.00, but validate_order priced the order at 42.50")
    assessment = assess(100, RETURNING, broken, LIMITS)
    assert (assessment.decision, assessment.reason) == ("reject", f"chain of custody broken: {broken.reason}")


def test_the_limits_come_from_the_environment():
    assert load_risk_limits({}) == RiskLimits()
    env = {
        "RISK_REVIEW_ABOVE_CENTS": "1000",
        "RISK_FIRST_ORDER_REVIEW_ABOVE_CENTS": "0",
        "RISK_REJECT_ABOVE_CENTS": " 9 ",
    }
    assert load_risk_limits(env) == RiskLimits(1000, 0, 9)
    for bad in ("-1", "1.5", "lots", "١٢"):
        with pytest.raises(SettingsError, match="RISK_REVIEW_ABOVE_CENTS"):
            load_risk_limits({"RISK_REVIEW_ABOVE_CENTS": bad})


# --- the chain of custody, on plain values ---------------------------------------------------------------------

PRICED = Call("validate_order", "inventory", "completed", {"ok": True, "total_cents": 4_250, "items": []})
RESERVED = Call("reserve_inventory", "inventory", "completed", {"ok": True, "reference": "res-1"})
SAGA = Caller("order-api", "o-1", "order_saga", (PRICED, RESERVED))


def test_the_chain_holds_when_the_order_saga_of_this_order_priced_this_total_and_reserved():
    custody = check_custody([SAGA], "o-1", 4_250)
    assert custody == CustodyCheck(
        True,
        [
            "started by order_saga o-1 on order-api",
            "total 42.50 as validate_order priced it on inventory",
            "reserve_inventory succeeded on inventory",
        ],
    )


@pytest.mark.parametrize(
    ("chain", "amount", "reason"),
    [
        (None, 4_250, "no propagated history"),
        ([], 4_250, "no propagated history"),
        ([SAGA], 999, "asked to approve 9.99, but validate_order priced the order at 42.50"),
        ([Caller("order-api", "o-2", "order_saga", SAGA.calls)], 4_250, "not by the order_saga of order o-1"),
        ([Caller("shipping", "o-1", "order_saga", SAGA.calls)], 4_250, "on shipping"),
        ([Caller("order-api", "o-1", "other", SAGA.calls)], 4_250, "started by 'other'"),
        ([Caller("order-api", "o-1", "order_saga", (RESERVED,))], 4_250, "no validate_order on inventory"),
        (
            [
                Caller(
                    "order-api", "o-1", "order_saga", (Call("validate_order", "order-api", "completed", PRICED.result),)
                )
            ],
            4_250,
            "no validate_order on inventory",
        ),
        ([Caller("order-api", "o-1", "order_saga", (PRICED,))], 4_250, "the reserve_inventory on inventory did not"),
        (
            [
                Caller(
                    "order-api",
                    "o-1",
                    "order_saga",
                    (PRICED, Call("reserve_inventory", "inventory", "completed", {"ok": False})),
                )
            ],
            4_250,
            "did not succeed",
        ),
        (
            [Caller("order-api", "o-1", "order_saga", (PRICED, Call("reserve_inventory", "inventory", "failed")))],
            4_250,
            "did not succeed",
        ),
    ],
    ids=[
        "no history",
        "an empty chain",
        "another total",
        "another order's saga",
        "another app",
        "another workflow",
        "never priced",
        "priced outside inventory",
        "never reserved",
        "reservation refused",
        "reservation failed",
    ],
)
def test_the_chain_breaks_on_anything_the_history_does_not_bear_out(chain, amount, reason):
    custody = check_custody(chain, "o-1", amount)
    assert custody.ok is False and reason in custody.reason


def test_a_retried_step_is_judged_by_its_last_attempt():
    retried = Caller(
        "order-api", "o-1", "order_saga", (PRICED, Call("reserve_inventory", "inventory", "failed"), RESERVED)
    )
    assert check_custody([retried], "o-1", 4_250).ok


# --- the chain of custody, on propagated histories as the engine hands them over --------------------------------


def event(event_id: int, **kind) -> pb.HistoryEvent:
    return pb.HistoryEvent(eventId=event_id, **kind)


def scheduled(event_id: int, name: str, app: str) -> pb.HistoryEvent:
    return event(
        event_id,
        taskScheduled=pb.TaskScheduledEvent(name=name),
        router=pb.TaskRouter(sourceAppID="order-api", targetAppID=app),
    )


def completed(task_id: int, result: dict) -> pb.HistoryEvent:
    value = wrappers_pb2.StringValue(value=json.dumps(result))
    return event(-1, taskCompleted=pb.TaskCompletedEvent(taskScheduledId=task_id, result=value))


def propagated(*events: pb.HistoryEvent, instance_id: str = "o-1", workflow: str = "order_saga") -> PropagatedHistory:
    chunk = pb.PropagatedHistoryChunk(
        appId="order-api",
        instanceId=instance_id,
        workflowName=workflow,
        rawEvents=[e.SerializeToString() for e in events],
    )
    history = PropagatedHistory.from_proto(
        pb.PropagatedHistory(scope=pb.HISTORY_PROPAGATION_SCOPE_LINEAGE, chunks=[chunk])
    )
    assert history is not None and history.scope is PropagationScope.LINEAGE
    return history


SAGA_EVENTS = (
    event(-1, workflowStarted=pb.WorkflowStartedEvent()),
    event(-1, executionStarted=pb.ExecutionStartedEvent(name="order_saga")),
    scheduled(0, "validate_order", "inventory"),
    completed(0, {"ok": True, "total_cents": 4_250, "items": []}),
    scheduled(1, "reserve_inventory", "inventory"),
    completed(1, {"ok": True, "reference": None, "reason": None, "cancelled": False}),
)


def test_lineage_reads_each_workflow_of_a_propagated_history_with_its_calls_where_they_ran_and_their_results():
    [saga] = lineage(propagated(*SAGA_EVENTS))
    assert (saga.app, saga.instance_id, saga.workflow) == ("order-api", "o-1", "order_saga")
    assert [(c.name, c.app, c.outcome) for c in saga.calls] == [
        ("validate_order", "inventory", "completed"),
        ("reserve_inventory", "inventory", "completed"),
    ]
    assert saga.calls[0].result["total_cents"] == 4_250
    assert lineage(None) is None


def test_a_propagated_history_of_this_order_with_the_priced_total_holds_and_one_with_another_total_breaks():
    assert check_custody(lineage(propagated(*SAGA_EVENTS)), "o-1", 4_250).ok
    mismatch = check_custody(lineage(propagated(*SAGA_EVENTS)), "o-1", 1_000)
    assert (mismatch.ok, mismatch.reason) == (
        False,
        "asked to approve 10.00, but validate_order priced the order at 42.50",
    )


def test_a_propagated_history_whose_reservation_failed_breaks_the_chain():
    failed = event(-1, taskFailed=pb.TaskFailedEvent(taskScheduledId=1))
    custody = check_custody(lineage(propagated(*SAGA_EVENTS[:5], failed)), "o-1", 4_250)
    assert custody.ok is False and "reserve_inventory" in custody.reason


def test_a_propagated_history_of_another_workflow_breaks_the_chain():
    custody = check_custody(lineage(propagated(*SAGA_EVENTS, workflow="forged_saga")), "o-1", 4_250)
    assert custody.ok is False and "forged_saga" in custody.reason


# --- the workflow ----------------------------------------------------------------------------------------------

REQUEST = RiskReviewInput("o-1", "c-1", 4_250, "o-1:risk_review", SagaRetry(100, 3, 2.0, 1000))
APPROVED = RiskAssessment("approve", "total 42.50 is within the limits", {"first_order": False})


def test_the_review_checks_custody_from_its_propagated_history_then_assesses_on_payment():
    ctx = FakeWorkflowContext(
        script={"assess_risk": APPROVED}, propagated=propagated(*SAGA_EVENTS), instance_id="o-1:risk_review"
    )
    out = ctx.run(risk_review, REQUEST)

    [call] = ctx.calls
    assert (call.name, call.app_id, call.retry_policy.max_number_of_attempts) == ("assess_risk", None, 3)
    assert call.input["custody"]["ok"] is True and call.input["idempotency_key"] == "o-1:assess_risk"
    assert call.input["amount_cents"] == 4_250 and call.input["customer_id"] == "c-1"
    assert (out["decision"], out["reason"], out["facts"]) == ("approve", APPROVED.reason, APPROVED.facts)
    assert out["custody"]["ok"] is True and len(out["custody"]["checks"]) == 3
    assert [(s["name"], s["outcome"]) for s in out["steps"]] == [
        ("check_custody", "succeeded"),
        ("assess_risk", "succeeded"),
    ]


def test_the_review_hands_a_broken_chain_to_the_assessment_which_rejects():
    ctx = FakeWorkflowContext(
        script={"assess_risk": RiskAssessment("reject", "chain of custody broken: ...")},
        propagated=propagated(*SAGA_EVENTS),
    )
    out = ctx.run(risk_review, RiskReviewInput("o-1", "c-1", 1, "o-1:risk_review"))

    assert ctx.calls[0].input["custody"]["ok"] is False
    assert out["steps"][0] | {"started_at": 0, "finished_at": 0} == {
        "name": "check_custody",
        "app": None,
        "outcome": "refused",
        "reason": "asked to approve 0.01, but validate_order priced the order at 42.50",
        "started_at": 0,
        "finished_at": 0,
    }


def test_a_review_whose_assessment_keeps_failing_fails_so_the_saga_sees_a_failed_child():
    ctx = FakeWorkflowContext(script={"assess_risk": Boom("payment db down")}, propagated=propagated(*SAGA_EVENTS))
    with pytest.raises(Exception, match="ConnectionError: payment db down"):
        ctx.run(risk_review, REQUEST)
