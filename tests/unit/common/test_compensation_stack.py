"""common/compensation.py and common/saga.py on their own: the compensation stack and the step runner, driven by the
fake context."""

from __future__ import annotations

import json

import pytest

from common.compensation import CompensationStack
from common.contracts import SagaRetry, StepResult, UndoInput
from common.outcomes import SagaAborted
from common.saga import Saga, retry_policy
from tests.support.fake_workflow import Boom, FakeWorkflowContext

POLICY = retry_policy(SagaRetry(first_interval_ms=10, max_attempts=3, backoff=2.0, max_interval_ms=100))


def unwinding(stack: CompensationStack, policy=POLICY):
    def workflow(ctx, _payload):
        return (yield from stack.unwind(ctx, policy))

    return workflow


def stack_of(*names: str) -> CompensationStack:
    stack = CompensationStack()
    for name in names:
        stack.push(name, f"app-{name}", UndoInput("o1", f"o1:{name}"))
    return stack


def test_unwind_runs_undos_last_in_first_out_on_their_apps_with_their_inputs():
    ctx = FakeWorkflowContext(
        script={"a": {"outcome": "undone"}, "b": {"outcome": "undone"}, "c": {"outcome": "nothing_to_undo"}}
    )
    outcomes = ctx.run(unwinding(stack_of("a", "b", "c")), None)

    assert ctx.route() == [("c", "app-c"), ("b", "app-b"), ("a", "app-a")]
    assert ctx.calls[0].input == {"order_id": "o1", "idempotency_key": "o1:c"}
    assert all(c.retry_policy is POLICY for c in ctx.calls)
    assert [(o["name"], o["outcome"]) for o in outcomes] == [("c", "nothing_to_undo"), ("b", "undone"), ("a", "undone")]


def test_an_undo_that_still_fails_after_its_retries_is_recorded_and_the_others_still_run():
    ctx = FakeWorkflowContext(
        script={
            "a": {"outcome": "undone"},
            "b": Boom("db down", "OperationalError"),
            "c": [Boom(), {"outcome": "undone"}],
        }
    )
    stack = stack_of("a", "b", "c")
    outcomes = ctx.run(unwinding(stack), None)

    assert ctx.names() == ["c", "b", "a"]
    assert [c.attempts for c in ctx.calls] == [2, 3, 1]
    assert outcomes[1] == {"name": "b", "outcome": "failed", "reason": "OperationalError: db down", "attempts": 3}
    assert outcomes[0]["outcome"] == "undone" and outcomes[0]["attempts"] == 2
    assert [c["name"] for c in stack.failed] == ["b"]


def test_the_view_shows_finished_undos_then_pending_ones_in_the_order_they_will_run():
    stack = stack_of("a", "b", "c")
    assert stack.view() == [
        {"name": "c", "outcome": "pending"},
        {"name": "b", "outcome": "pending"},
        {"name": "a", "outcome": "pending"},
    ]

    seen = []
    ctx = FakeWorkflowContext(script={n: {"outcome": "undone"} for n in "abc"})

    def workflow(ctx, _):
        return (yield from stack.unwind(ctx, POLICY, on_change=lambda: seen.append(stack.view())))

    ctx.run(workflow, None)
    assert [(v["name"], v["outcome"]) for v in seen[0]] == [("c", "undone"), ("b", "pending"), ("a", "pending")]
    assert stack.pending == [] and len(stack.view()) == 3


def test_an_empty_stack_unwinds_to_nothing_without_calling_anything():
    ctx = FakeWorkflowContext(script={})
    assert ctx.run(unwinding(CompensationStack()), None) == []
    assert ctx.calls == []


def test_the_stack_is_plain_json_and_refuses_an_input_that_is_not():
    stack = stack_of("a")
    assert json.loads(json.dumps([c.__dict__ for c in stack.pending]))[0]["input"]["idempotency_key"] == "o1:a"
    with pytest.raises(TypeError):
        stack.push("x", "app", {"when": object()})


def test_saga_step_turns_a_business_no_into_a_refusal_and_records_it():
    ctx = FakeWorkflowContext(script={"charge": {"ok": False, "reason": "card declined"}})

    def workflow(ctx, _):
        saga = Saga(ctx, POLICY)
        try:
            yield from saga.step("charge", "payment", {"x": 1}, StepResult)
        except SagaAborted as abort:
            return [abort.kind, abort.step, abort.reason, saga.steps]

    kind, step, reason, steps = ctx.run(workflow, None)
    assert (kind, step, reason) == ("refused", "charge", "card declined")
    assert steps == [
        {
            "name": "charge",
            "app": "payment",
            "outcome": "refused",
            "reason": "card declined",
            "attempts": 1,
            "started_at": "2030-01-02T03:04:05+00:00",
            "finished_at": "2030-01-02T03:04:06+00:00",
        }
    ]


def test_saga_step_stops_when_a_cancel_arrived_while_it_was_in_flight():
    ctx = FakeWorkflowContext(
        script={"ship": {"ok": True}}, cancel_during="ship", cancel_data={"reason": "changed mind"}
    )

    def workflow(ctx, _):
        saga = Saga(ctx, POLICY, cancel=ctx.wait_for_external_event("cancel"))
        try:
            yield from saga.step("ship", "shipping", {}, StepResult)
        except SagaAborted as abort:
            return [abort.kind, abort.reason, saga.steps[0]["outcome"]]

    assert ctx.run(workflow, None) == ["cancelled", "changed mind", "succeeded"]


def test_saga_retry_maps_the_settings_fields_onto_the_sdk_retry_policy():
    policy = retry_policy(SagaRetry(first_interval_ms=250, max_attempts=4, backoff=3.0, max_interval_ms=2000))
    assert policy.max_number_of_attempts == 4
    assert policy.first_retry_interval.total_seconds() == 0.25
    assert policy.backoff_coefficient == 3.0
    assert policy.max_retry_interval.total_seconds() == 2.0
