"""The client API of one app's workflows, as daprd answers it: start, read, list, raise an event, terminate,
suspend, resume and purge. The checks and refusals (with daprd's codes and texts) are here; each accepted
request becomes an event in an instance's inbox, or a new instance, through the engine. Both listeners,
gRPC (``grpc_api``) and HTTP (``http_api``), call this and nothing else of the engine's client side."""

from __future__ import annotations

from collections.abc import Callable

from dapr.ext.workflow._durabletask.internal import protos as pb

from .engine import Engine
from .model import PENDING, EngineError, Instance, Key, no_instance, string_value


class Client:
    def __init__(self, engine: Engine, app_id: str) -> None:
        self.engine = engine
        self.app_id = app_id

    def get(self, instance_id: str) -> Instance | None:
        return self.engine.lookup((self.app_id, instance_id))

    async def wait_for(self, instance_id: str, predicate: Callable[[Instance], bool]) -> Instance:
        """Wait until the instance exists and satisfies ``predicate`` (cancelled by the caller's deadline)."""
        return await self.engine.wait_for(self.app_id, instance_id, predicate)

    def list_ids(self, page_size: int = 0, token: str = "") -> tuple[list[str], str | None]:
        """The app's instance IDs in creation order, a page at a time as daprd pages them: after the instance
        the token names (its creation number), ``page_size`` of them (0: all), and a token only when more follow."""
        after = 0
        if token:
            try:
                after = int(token)
            except ValueError:
                raise EngineError(
                    "UNKNOWN", f'invalid continue token: strconv.ParseInt: parsing "{token}": invalid syntax'
                ) from None
        found = self.engine.store.list_ids(self.app_id, after, page_size + 1 if page_size else 0)
        if page_size and len(found) > page_size:
            return [i for _, i in found[:page_size]], str(found[page_size - 1][0])
        return [i for _, i in found], None

    async def start(
        self,
        instance_id: str,
        name: str,
        input: str | None = None,
        scheduled_start: float | None = None,
        version: str | None = None,
        wait: bool = True,
        trace: pb.TraceContext | None = None,
    ) -> str:
        if not name:
            raise EngineError("INVALID_ARGUMENT", "workflow name is required")
        if not instance_id:
            raise EngineError("INVALID_ARGUMENT", "instance ID is required")
        existing = self.get(instance_id)
        if existing is not None and not existing.completed:
            raise EngineError("ALREADY_EXISTS", f"an active workflow with ID '{instance_id}' already exists")
        with self.engine.transition() as t:
            router = pb.TaskRouter(sourceAppID=self.app_id)
            inst = self.engine.new_instance(
                t, self.app_id, instance_id, name, input, version, None, router, scheduled_start, existing, trace=trace
            )
            t.notify.append(inst.key)
            t.wake.append(inst)
        if wait and scheduled_start is None:
            await self.wait_for(instance_id, lambda i: i.derive_status() != PENDING)
        return instance_id

    def _require(self, instance_id: str) -> Instance:
        if not instance_id:
            raise EngineError("INVALID_ARGUMENT", "instance ID is required")
        inst = self.get(instance_id)
        if inst is None:
            raise no_instance()
        return inst

    async def raise_event(self, instance_id: str, name: str, data: str | None) -> None:
        if not name:
            raise EngineError("INVALID_ARGUMENT", "event name is required")
        inst = self._require(instance_id)
        if inst.completed:
            return  # daprd drops events raised to a completed instance
        if inst.stalled:
            raise EngineError("UNKNOWN", f"failed to invoke method for workflow '{instance_id}': actor is stalled")
        self.engine.send(inst, self.engine.event(eventRaised=pb.EventRaisedEvent(name=name, input=string_value(data))))

    async def terminate(self, instance_id: str, output: str | None, recursive: bool, wait: bool = True) -> None:
        inst = self._require(instance_id)
        if inst.completed:
            return
        if not inst.started and inst.turn is None:
            # Not started yet (scheduled for later, or no worker has run it): the engine ends it itself.
            self.engine.end_unstarted(inst, output, recursive)
            return
        terminated = pb.ExecutionTerminatedEvent(input=string_value(output), recurse=recursive)
        self.engine.send(inst, self.engine.event(executionTerminated=terminated))
        if wait:
            await self.wait_for(instance_id, lambda i: i.completed)

    async def suspend(self, instance_id: str, reason: str | None, wait: bool = True) -> None:
        inst = self._require(instance_id)
        if inst.completed:
            return
        suspended = pb.ExecutionSuspendedEvent(input=string_value(reason))
        self.engine.send(inst, self.engine.event(executionSuspended=suspended))
        if wait:
            await self.wait_for(instance_id, lambda i: i.completed or i.suspended)

    async def resume(self, instance_id: str, reason: str | None, wait: bool = True) -> None:
        inst = self._require(instance_id)
        if inst.completed:
            return
        pending_suspend = any(i.event.HasField("executionSuspended") for i in inst.inbox)
        if not inst.suspended and not pending_suspend:
            return  # an unsolicited executionResumed would fail the workflow in the SDK
        self.engine.send(inst, self.engine.event(executionResumed=pb.ExecutionResumedEvent(input=string_value(reason))))
        if wait:
            await self.wait_for(
                instance_id,
                lambda i: (
                    i.completed or (not i.suspended and not any(x.event.HasField("executionResumed") for x in i.inbox))
                ),
            )

    async def purge(self, instance_id: str, recursive: bool) -> int:
        try:
            inst = self._require(instance_id)
        except EngineError as exc:
            if exc.code == "UNKNOWN":
                exc.message = f"failed to fetch workflow state: {exc.message}"  # daprd's wording
            raise
        if not inst.completed:
            raise EngineError("UNKNOWN", "orchestration has not yet completed")
        keys = [inst.key]
        if recursive:
            keys = self._descendants(inst) + keys
        found = [(key, self.engine.lookup(key)) for key in keys]
        purged = [key for key, child in found if child is not None]
        for _, child in found:  # all or nothing: refuse before anything is written
            if child is not None and not child.completed:
                raise EngineError(
                    "UNKNOWN", f"orchestration has not yet completed: child {child.instance_id} on app {child.app_id}"
                )
        self.engine.purge_instances(purged)
        return len(purged)

    def _descendants(self, inst: Instance) -> list[Key]:
        out: list[Key] = []
        for key in inst.children():
            child = self.engine.lookup(key)
            if child is not None and key not in out:
                out.extend(k for k in self._descendants(child) if k not in out)
                out.append(key)
        return out
