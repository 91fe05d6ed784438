"""The benchmark's Dapr side, one process per role, all on the unmodified Dapr workflow SDK and
configured from ``DAPR_GRPC_PORT`` as under ``dapr run``: ``workflow`` (app bench-a), ``activity``
(app bench-b) and ``client``. Started by ``bench.engines``; never imports durabletask."""

from __future__ import annotations

import sys
from collections.abc import Awaitable, Callable, Generator
from typing import TYPE_CHECKING, Any

from . import _load as load

if TYPE_CHECKING:
    from dapr.ext.workflow import DaprWorkflowContext, WorkflowActivityContext, WorkflowRuntime

WORKFLOW = "bench_chain"
ACTIVITY = "bench_noop"
ACTIVITY_APP = "bench-b"


def bench_chain(ctx: DaprWorkflowContext, activities: int) -> Generator[Any, Any, dict[str, Any]]:
    """K sequential cross-app calls of a trivial activity."""
    return (yield from load.chain(lambda i: ctx.call_activity(ACTIVITY, input=i, app_id=ACTIVITY_APP), activities))


def bench_noop(ctx: WorkflowActivityContext, i: int) -> dict[str, Any]:
    return load.noop(i)


def _runtime() -> WorkflowRuntime:
    from dapr.ext.workflow import WorkflowRuntime
    from dapr.ext.workflow.logger import LoggerOptions

    # Both sides of the comparison log warnings only: the benchmark measures engines, not log I/O.
    return WorkflowRuntime(logger_options=LoggerOptions(log_level="WARNING"))


def _serve(register: Callable[[WorkflowRuntime], object]) -> int:
    runtime = _runtime()
    register(runtime)
    return load.serve_until_stopped(lambda: (runtime.start(), {})[1], runtime.shutdown)


def _client(activities: int) -> tuple[load.RunOne, Callable[[], Awaitable[None]]]:
    from dapr.ext.workflow import WorkflowStatus
    from dapr.ext.workflow.aio import DaprWorkflowClient
    from dapr.ext.workflow.logger import LoggerOptions

    client = DaprWorkflowClient(logger_options=LoggerOptions(log_level="WARNING"))

    async def run_one(instance_id: str) -> tuple[int, int]:
        await client.schedule_new_workflow(WORKFLOW, input=activities, instance_id=instance_id)
        state = await client.wait_for_workflow_completion(instance_id, timeout_in_seconds=300)
        return load.chain_result(instance_id, state, WorkflowStatus.COMPLETED)

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
