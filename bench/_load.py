"""The benchmark's workload and load loop, shared by its two sides (Dapr SDK and durabletask), so both run
the same thing. It imports neither SDK: each side hands it a way to call an activity, and each client a
coroutine that runs one workflow to completion."""

from __future__ import annotations

import asyncio
import json
import sys
import time
from collections.abc import Awaitable, Callable, Generator
from typing import Any, Protocol, TypeVar

Task = TypeVar("Task")  # the SDK's task type

# The workflow's output: how many activities ran and the sum of their own run times.
RunOne = Callable[[str], Awaitable[tuple[int, int]]]
# What a client hands client_main: its RunOne and a close, given the number of activities per workflow.
MakeRunOne = Callable[[int], tuple[RunOne, Callable[[], Awaitable[None]]]]


def chain(call_activity: Callable[[int], Task], activities: int) -> Generator[Task, Any, dict[str, Any]]:
    """The workflow body: K sequential calls of the activity (``call_activity(i)`` returns the SDK's task);
    returns how many ran and their own time. ``yield from`` it in each SDK's workflow function."""
    own_ns = 0
    for i in range(activities):
        result = yield call_activity(i)
        own_ns += result["own_ns"]
    return {"ran": activities, "own_ns": own_ns}


def noop(i: int) -> dict[str, Any]:
    """The activity's body: trivial work that times itself."""
    t0 = time.perf_counter_ns()
    doubled = i * 2
    return {"i": doubled, "own_ns": time.perf_counter_ns() - t0}


class FinishedState(Protocol):
    """What both SDKs' finished-workflow state has."""

    @property
    def runtime_status(self) -> object: ...
    @property
    def serialized_output(self) -> str | None: ...


def chain_result(instance_id: str, state: FinishedState | None, completed: object) -> tuple[int, int]:
    """A finished workflow's output as ``(ran, own_ns)``; RuntimeError unless its status is ``completed``."""
    if state is None or state.runtime_status != completed or state.serialized_output is None:
        raise RuntimeError(f"workflow {instance_id} ended as {state and state.runtime_status}: {state}")
    out = json.loads(state.serialized_output)
    return out["ran"], out["own_ns"]


async def drive(run_one: RunOne, prefix: str, workflows: int, concurrency: int, activities: int) -> dict[str, Any]:
    """Run ``workflows`` workflows, at most ``concurrency`` at a time, each from schedule to observed
    completion; return the wall and CPU time, each workflow's latency and its activities' own run time."""
    latencies: list[float] = []
    own: list[float] = []
    next_index = iter(range(workflows))

    async def lane() -> None:
        for i in next_index:
            t0 = time.perf_counter()
            ran, own_ns = await run_one(f"{prefix}-{i}")
            latencies.append(time.perf_counter() - t0)
            if ran != activities:
                raise RuntimeError(f"workflow {prefix}-{i} ran {ran} activities, expected {activities}")
            own.append(own_ns / 1e9)

    t0, cpu0 = time.perf_counter(), time.process_time()
    await asyncio.gather(*(lane() for _ in range(min(concurrency, workflows))))
    wall, cpu = time.perf_counter() - t0, time.process_time() - cpu0
    return {"wall_s": wall, "cpu_s": cpu, "latencies_s": latencies, "activity_own_s": own}


def client_main(argv: list[str], make_run_one: MakeRunOne) -> int:
    """``PREFIX WORKFLOWS CONCURRENCY ACTIVITIES``: run the load, print the result as one JSON line."""
    prefix, workflows, concurrency, activities = argv[0], int(argv[1]), int(argv[2]), int(argv[3])

    async def main() -> dict[str, Any]:
        run_one, close = make_run_one(activities)
        try:
            return await drive(run_one, prefix, workflows, concurrency, activities)
        finally:
            await close()

    print(json.dumps(asyncio.run(main())), flush=True)
    return 0


def serve_until_stopped(start: Callable[[], dict[str, Any]], stop: Callable[[], None]) -> int:
    """Run a worker or backend process: start it, print one JSON "ready" line (with whatever ``start``
    returns, e.g. a port) for the benchmark to wait on, and stop it on SIGTERM or SIGINT."""
    import signal
    import threading

    stopping = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stopping.set())
    fields = start()
    print(json.dumps({"ready": True, **fields}), flush=True)
    stopping.wait()
    stop()
    sys.stdout.flush()
    return 0
