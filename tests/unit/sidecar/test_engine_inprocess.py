"""The engine in-process: a real state file in a temp folder, a hand-moved clock, worker streams read
directly (no gRPC, no worker processes). The process tests in ``tests/sidecar/engine`` cover the same engine
through the SDK; these pin its transitions: what is committed, what is sent, and in which order."""

from __future__ import annotations

from pathlib import Path

import pytest
from dapr.ext.workflow._durabletask.internal import protos as pb
from google.protobuf import wrappers_pb2

from sidecar import engine as engine_module
from sidecar.client import Client
from sidecar.dispatcher import WorkerStream
from sidecar.engine import Engine
from sidecar.model import COMPLETED, PENDING, RUNNING, timestamp
from sidecar.retention import RetentionPolicy
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
    return pb.WorkflowResponse(
        instanceId=item.workflowRequest.instanceId, actions=list(actions), completionToken=item.completionToken
    )


def new_event_kinds(item: pb.WorkItem) -> list[str]:
    return [e.WhichOneof("eventType") for e in item.workflowRequest.newEvents]


CHARGE = pb.WorkflowAction(
    id=0,
    router=pb.TaskRouter(targetAppID="payment"),
    scheduleTask=pb.ScheduleTaskAction(name="charge", input=wrappers_pb2.StringValue(value="2400")),
)


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

    engine.complete_activity(
        "payment",
        pb.ActivityResponse(
            instanceId="o-1",
            taskId=0,
            result=wrappers_pb2.StringValue(value='"ch_1"'),
            completionToken=work.completionToken,
        ),
    )
    [second] = take(orders)
    assert new_event_kinds(second) == ["workflowStarted", "taskCompleted"]
    assert second.workflowRequest.newEvents[1].taskCompleted.result.value == '"ch_1"'
    assert [e.WhichOneof("eventType") for e in second.workflowRequest.pastEvents] == [
        "workflowStarted",
        "executionStarted",
        "taskScheduled",
    ]

    done = pb.WorkflowAction(
        id=1,
        completeWorkflow=pb.CompleteWorkflowAction(
            workflowStatus=COMPLETED, result=wrappers_pb2.StringValue(value='"ok"')
        ),
    )
    engine.complete_turn("orders", answer(second, done))
    inst = engine.lookup(("orders", "o-1"))
    assert inst is not None and (inst.completed, inst.status, inst.output) == (True, COMPLETED, '"ok"')


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
            "workflowStarted",
            "executionStarted",
            "taskScheduled",
        ]
        [work] = take(reopened.connect("payment"))
        assert work.activityRequest.name == "charge"
    finally:
        await reopened.close()


async def finish(engine: Engine, instance_id: str, status: int = COMPLETED) -> None:
    """Start an instance of ``orders`` and end it in its first turn (the ``orders`` stream must be connected)."""
    stream = engine.dispatcher.streams["orders"][0]
    await Client(engine, "orders").start(instance_id, "saga", wait=False)
    [item] = take(stream)
    engine.complete_turn(
        "orders",
        answer(
            item,
            pb.WorkflowAction(
                id=0,
                completeWorkflow=pb.CompleteWorkflowAction(
                    workflowStatus=status, result=wrappers_pb2.StringValue(value=f'"{instance_id}"')
                ),
            ),
        ),
    )


async def test_finished_instances_leave_memory_and_are_read_back_from_the_file(
    engine: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(engine_module, "FINISHED_IN_MEMORY", 2)
    engine.connect("orders")
    for n in range(5):
        await finish(engine, f"f-{n}")
    assert engine.instances == {}  # nothing live
    assert list(engine._finished) == [("orders", "f-3"), ("orders", "f-4")]
    client = Client(engine, "orders")
    old = client.get("f-0")
    assert old is not None and old.output == '"f-0"' and old.status == COMPLETED
    assert [e.WhichOneof("eventType") for e in old.history][-1] == "executionCompleted"
    assert client.list_ids(page_size=2) == (["f-0", "f-1"], client.list_ids(page_size=2)[1])
    ids, token = client.list_ids(page_size=3)
    assert ids == ["f-0", "f-1", "f-2"] and client.list_ids(page_size=3, token=token) == (["f-3", "f-4"], None)
    # Reusing a finished ID starts a new execution in the same place of the list.
    await client.start("f-1", "saga", wait=False)
    assert client.get("f-1").generation == 1 and client.list_ids()[0] == [f"f-{n}" for n in range(5)]


async def test_a_restart_loads_only_what_has_not_finished(tmp_path: Path, clock: ManualClock) -> None:
    engine = await Engine.open(tmp_path / "state.db", clock)
    engine.connect("orders")
    await finish(engine, "done")
    await Client(engine, "orders").start("open", "saga", wait=False)
    await engine.close()
    reopened = await Engine.open(tmp_path / "state.db", clock)
    try:
        assert list(reopened.instances) == [("orders", "open")]
        assert Client(reopened, "orders").get("done").output == '"done"'
    finally:
        await reopened.close()


async def test_retention_purges_finished_instances_once_they_are_old_enough(engine: Engine, clock: ManualClock) -> None:
    engine.connect("orders")
    await finish(engine, "ok-1")
    await finish(engine, "failed-1", status=pb.ORCHESTRATION_STATUS_FAILED)
    await Client(engine, "orders").start("running", "saga", wait=False)
    policy = RetentionPolicy.parse("completed=1h,failed=2h")
    clock.advance(3599)
    assert engine.purge_expired(policy) == 0
    clock.advance(2)
    assert engine.purge_expired(policy) == 1
    client = Client(engine, "orders")
    assert client.get("ok-1") is None and client.get("failed-1") is not None
    clock.advance(3600)
    assert engine.purge_expired(policy) == 1
    assert client.list_ids()[0] == ["running"]  # a running instance is never purged
