"""The benchmark's Dapr side, one process per role, all on the unmodified Dapr workflow SDK and
configured from ``DAPR_GRPC_PORT`` as under ``dapr run``: ``workflow`` (app bench-a), ``activity``
(app bench-b) and ``client``. Started by ``bench.engines``; never imports durabletask."""

from __future__ import annotations

import json
import logging
import sys
import time

from . import _load as load

WORKFLOW = "bench_chain"
ACTIVITY = "bench_noop"
ACTIVITY_APP = "bench-b"


def bench_chain(ctx, activities: int):
    """K sequential cross-app calls of a trivial activity; returns how many ran and their own time."""
    own_ns = 0
    for i in range(activities):
        result = yield ctx.call_activity(ACTIVITY, input=i, app_id=ACTIVITY_APP)
        own_ns += result["own_ns"]
    return load.chain_output(activities, own_ns)


def bench_noop(ctx, i: int) -> dict:
    t0 = time.perf_counter_ns()
    doubled = i * 2
    return {"i": doubled, "own_ns": time.perf_counter_ns() - t0}


def _runtime():
    from dapr.ext.workflow import WorkflowRuntime
    from dapr.ext.workflow.logger import LoggerOptions

    # Both sides of the comparison log warnings only: the benchmark measures engines, not log I/O.
    return WorkflowRuntime(logger_options=LoggerOptions(log_level=logging.WARNING))


def _serve(register) -> int:
    runtime = _runtime()
    register(runtime)
    return load.serve_until_stopped(lambda: (runtime.start(), {})[1], runtime.shutdown)


def _client(activities: int):
    from dapr.ext.workflow import WorkflowStatus
    from dapr.ext.workflow.aio import DaprWorkflowClient
    from dapr.ext.workflow.logger import LoggerOptions

    client = DaprWorkflowClient(logger_options=LoggerOptions(log_level=logging.WARNING))

    async def run_one(instance_id: str) -> tuple[int, int]:
        await client.schedule_new_workflow(WORKFLOW, input=activities, instance_id=instance_id)
        state = await client.wait_for_workflow_completion(instance_id, timeout_in_seconds=300)
        if state is None or state.runtime_status != WorkflowStatus.COMPLETED:
            raise RuntimeError(f"workflow {instance_id} ended as {state and state.runtime_status}: {state}")
        out = json.loads(state.serialized_output)
        return out["ran"], out["own_ns"]

    async def close() -> None:
        pass  # the SDK's aio workflow client has no close() in 1.18.3; the process exits right after

    return run_one, close


def main(argv: list[str]) -> int:
    role = argv[0]
    if role == "workflow":
        return _serve(lambda rt: rt.register_workflow(bench_chain, name=WORKFLOW))
    if role == "activity":
        return _serve(lambda rt: rt.register_activity(bench_noop, name=ACTIVITY))
    if role == "client":
        return load.client_main(argv[1:], _client)
    raise SystemExit(f"unknown role {role!r}: expected workflow, activity or client")


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
