"""The benchmark's load loop, shared by its two client processes (Dapr SDK and durabletask). It imports
neither SDK: each client hands it a coroutine that runs one workflow to completion."""

from __future__ import annotations

import asyncio
import json
import sys
import time
from collections.abc import Awaitable, Callable

# The workflow's output: how many activities ran and the sum of their own run times.
RunOne = Callable[[str], Awaitable[tuple[int, int]]]


async def drive(run_one: RunOne, prefix: str, workflows: int, concurrency: int, activities: int) -> dict:
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


def client_main(argv: list[str], make_run_one: Callable[[int], tuple[RunOne, Callable[[], Awaitable[None]]]]) -> int:
    """``PREFIX WORKFLOWS CONCURRENCY ACTIVITIES``: run the load, print the result as one JSON line."""
    prefix, workflows, concurrency, activities = argv[0], int(argv[1]), int(argv[2]), int(argv[3])

    async def main() -> dict:
        run_one, close = make_run_one(activities)
        try:
            return await drive(run_one, prefix, workflows, concurrency, activities)
        finally:
            await close()

    print(json.dumps(asyncio.run(main())), flush=True)
    return 0


def chain_output(ran: int, own_ns: int) -> dict:
    return {"ran": ran, "own_ns": own_ns}


def serve_until_stopped(start: Callable[[], dict], stop: Callable[[], None]) -> int:
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
