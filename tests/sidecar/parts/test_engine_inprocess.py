"""The engine in-process: a real state file in a temp folder, a hand-moved clock, worker streams read
directly (no gRPC, no worker processes). The process tests in ``tests/sidecar/engine`` cover the same engine
through the SDK; these pin its transitions: what is committed, what is sent, and in which order."""

from __future__ import annotations

from pathlib import Path

import pytest
from dapr.ext.workflow._durabletask.internal import protos as pb
from google.protobuf import wrappers_pb2

from sidecar.client import Client
from sidecar.dispatcher import WorkerStream
from sidecar.engine import Engine
from sidecar.model import COMPLETED, PENDING, RUNNING, timestamp
from sidecar.store import Tx
from sidecar.timers import ManualClock


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock()


@pytest.fixture
async def engine(tmp_path: Path, clock: ManualClock):
    engine = await Engine.open(tmp_path / "state.db", clock)
    for app in ("orders", "payment"):
        engine.register_app(app)
    yield engine
    await engine.close()


def take(stream: WorkerStream) -> list[pb.WorkItem]:
    items = []
    while not stream.queue.empty():
        items.append(stream.queue.get_nowait())
    return items


def answer(item: pb.WorkItem, *actions: pb.WorkflowAction) -> pb.WorkflowResponse:
    return pb.WorkflowResponse(instanceId=item.workflowRequest.instanceId, actions=list(actions),
                               completionToken=item.completionToken)


def new_event_kinds(item: pb.WorkItem) -> list[str]:
    return [e.WhichOneof("eventType") for e in item.workflowRequest.newEvents]


CHARGE = pb.WorkflowAction(id=0, router=pb.TaskRouter(targetAppID="payment"), scheduleTask=pb.ScheduleTaskAction(
    name="charge", input=wrappers_pb2.StringValue(value="2400")))


async def test_a_saga_step_runs_on_the_other_app_and_its_result_comes_back(engine: Engine) -> None:
    orders, payment = engine.connect("orders"), engine.connect("payment")
    await Client(engine, "orders").start("o-1", "saga", '"in"', wait=False)
    [first] = take(orders)
    assert new_event_kinds(first) == ["workflowStarted", "executionStarted"]
    assert engine.instances[("orders", "o-1")].derive_status() == PENDING

    engine.complete_turn("orders", answer(first, CHARGE))
    assert engine.instances[("orders", "o-1")].derive_status() == RUNNING
    [work] = take(payment)
    assert work.activityRequest.name == "charge" and work.activityRequest.input.value == "2400"
    assert take(orders) == []  # nothing to do until the charge answers

    engine.complete_activity("payment", pb.ActivityResponse(
        instanceId="o-1", taskId=0, result=wrappers_pb2.StringValue(value='"ch_1"'), completionToken=work.completionToken))
    [second] = take(orders)
    assert new_event_kinds(second) == ["workflowStarted", "taskCompleted"]
    assert second.workflowRequest.newEvents[1].taskCompleted.result.value == '"ch_1"'
    assert [e.WhichOneof("eventType") for e in second.workflowRequest.pastEvents] == [
        "workflowStarted", "executionStarted", "taskScheduled"]

    done = pb.WorkflowAction(id=1, completeWorkflow=pb.CompleteWorkflowAction(
        workflowStatus=COMPLETED, result=wrappers_pb2.StringValue(value='"ok"')))
    engine.complete_turn("orders", answer(second, done))
    inst = engine.instances[("orders", "o-1")]
    assert (inst.completed, inst.status, inst.output) == (True, COMPLETED, '"ok"')


async def test_a_durable_timer_wakes_the_instance_when_the_clock_reaches_it(engine: Engine, clock: ManualClock) -> None:
    orders = engine.connect("orders")
    await Client(engine, "orders").start("o-2", "saga", wait=False)
    [first] = take(orders)
    timer = pb.WorkflowAction(id=0, createTimer=pb.CreateTimerAction(fireAt=timestamp(clock.now() + 10)))
    engine.complete_turn("orders", answer(first, timer))
    clock.advance(9.9)
    assert take(orders) == []
    clock.advance(0.2)
    [fired] = take(orders)
    assert new_event_kinds(fired) == ["workflowStarted", "timerFired"]


async def test_nothing_is_sent_when_the_transition_does_not_commit(
    engine: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    orders, payment = engine.connect("orders"), engine.connect("payment")
    await Client(engine, "orders").start("o-3", "saga", wait=False)
    [first] = take(orders)

    def disk_full(self: Tx) -> None:
        raise OSError("disk full")

    monkeypatch.setattr(Tx, "commit", disk_full)
    with pytest.raises(OSError):
        engine.complete_turn("orders", answer(first, CHARGE))
    assert take(payment) == [] and engine.dispatcher.activities == {}


async def test_a_closed_stream_gives_its_turn_and_activity_to_the_next_worker(engine: Engine) -> None:
    orders, payment = engine.connect("orders"), engine.connect("payment")
    await Client(engine, "orders").start("o-4", "saga", wait=False)
    [first] = take(orders)
    engine.complete_turn("orders", answer(first, CHARGE))
    [work] = take(payment)
    engine.disconnect(payment)
    again = engine.connect("payment")
    [redelivered] = take(again)
    assert redelivered.activityRequest == work.activityRequest

    await Client(engine, "orders").start("o-5", "saga", wait=False)
    [turn] = take(orders)
    engine.disconnect(orders)
    [retold] = take(engine.connect("orders"))
    assert retold.workflowRequest.instanceId == turn.workflowRequest.instanceId == "o-5"
    # The first worker's late answer is stale: its token is no longer the turn's.
    engine.complete_turn("orders", answer(turn, CHARGE))
    assert engine.instances[("orders", "o-5")].derive_status() == PENDING


async def test_a_restarted_engine_carries_on_from_the_state_file(tmp_path: Path, clock: ManualClock) -> None:
    engine = await Engine.open(tmp_path / "state.db", clock)
    orders = engine.connect("orders")
    await Client(engine, "orders").start("o-6", "saga", wait=False)
    [first] = take(orders)
    engine.complete_turn("orders", answer(first, CHARGE))
    await engine.close()

    reopened = await Engine.open(tmp_path / "state.db", clock)
    try:
        inst = reopened.instances[("orders", "o-6")]
        assert [e.WhichOneof("eventType") for e in inst.history] == [
            "workflowStarted", "executionStarted", "taskScheduled"]
        [work] = take(reopened.connect("payment"))
        assert work.activityRequest.name == "charge"
    finally:
        await reopened.close()
