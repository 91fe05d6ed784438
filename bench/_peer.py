"""The benchmark's peer: the same workload on Microsoft's ``durabletask`` with its in-memory test
backend (``durabletask.testing``), one process per role: ``backend``, ``worker`` and ``client``.

Only ever run as a child process of ``bench.engines``: durabletask's generated protobuf modules
clash with the Dapr SDK's in one interpreter. The peer has no multi-app routing, so the workflow
and its activities run on its one worker.
"""

from __future__ import annotations

import logging
import sys
from collections.abc import Awaitable, Callable, Generator
from typing import TYPE_CHECKING, Any

from . import _load as load

if TYPE_CHECKING:
    from durabletask import task

WORKFLOW = "bench_chain"
ACTIVITY = "bench_noop"


def bench_chain(ctx: task.OrchestrationContext, activities: int) -> Generator[task.Task[Any], Any, dict[str, Any]]:
    return (yield from load.chain(lambda i: ctx.call_activity(ACTIVITY, input=i), activities))


def bench_noop(ctx: task.ActivityContext, i: int) -> dict[str, Any]:
    return load.noop(i)


def _quiet_logger(name: str) -> logging.Logger:
    # Both sides of the comparison log warnings only: the benchmark measures engines, not log I/O.
    logger = logging.getLogger(f"bench.{name}")
    logger.setLevel(logging.WARNING)
    logger.addHandler(logging.StreamHandler(sys.stderr))
    return logger


def _backend(threads: int) -> int:
    from concurrent import futures

    import durabletask.internal.orchestrator_service_pb2_grpc as stubs
    import grpc
    from durabletask.testing import InMemoryOrchestrationBackend

    # What InMemoryOrchestrationBackend.start() does, but on 127.0.0.1 and a free port, with a thread
    # pool wide enough for the load: start() has 10 threads, and every waiting client and open work-item
    # stream holds one for the length of its call, so a 50-wide load would wait on itself.
    backend = InMemoryOrchestrationBackend()
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=threads))
    stubs.add_TaskHubSidecarServiceServicer_to_server(backend, server)
    port = server.add_insecure_port("127.0.0.1:0")

    def start() -> dict[str, Any]:
        server.start()
        return {"port": port}

    def stop() -> None:
        backend._shutdown_event.set()  # ends its GetWorkItems loops, as its own stop() does
        backend._work_available.set()
        server.stop(0).wait()

    return load.serve_until_stopped(start, stop)


def _worker(port: int) -> int:
    from durabletask.worker import TaskHubGrpcWorker

    worker = TaskHubGrpcWorker(host_address=f"127.0.0.1:{port}", logger=_quiet_logger("worker"))
    # Named: mypy cannot solve the output type through durabletask's ``Generator[..., T] | T`` on its own.
    orchestrator: task.Orchestrator[int, dict[str, Any]] = bench_chain
    worker.add_orchestrator(orchestrator)
    worker.add_activity(bench_noop)
    return load.serve_until_stopped(lambda: (worker.start(), {})[1], worker.stop)


def _client(port: int) -> load.MakeRunOne:
    def make(activities: int) -> tuple[load.RunOne, Callable[[], Awaitable[None]]]:
        from durabletask.client import AsyncTaskHubGrpcClient, OrchestrationStatus

        client = AsyncTaskHubGrpcClient(host_address=f"127.0.0.1:{port}", logger=_quiet_logger("client"))

        async def run_one(instance_id: str) -> tuple[int, int]:
            await client.schedule_new_orchestration(WORKFLOW, input=activities, instance_id=instance_id)
            state = await client.wait_for_orchestration_completion(instance_id, timeout=300)
            return load.chain_result(instance_id, state, OrchestrationStatus.COMPLETED)

        return run_one, client.close

    return make


def main(argv: list[str]) -> int:
    role = argv[0]
    if role == "backend":
        return _backend(int(argv[1]))
    if role == "worker":
        return _worker(int(argv[1]))
    if role == "client":
        return load.client_main(argv[2:], _client(int(argv[1])))
    raise SystemExit(f"unknown role {role!r}: expected backend, worker or client")


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
