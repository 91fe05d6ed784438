"""The ``/faults`` HTTP endpoints of one app (see ``common.faults`` for the modes): list, set, clear. Mounted
only when FAULTS_ENABLED=true; errors leave as problem details (unknown activity 404, bad combination 400)."""

from __future__ import annotations

from collections.abc import Awaitable
from typing import TypeVar

from litestar import Router, delete, get, put
from litestar.di import NamedDependency, Provide
from litestar.params import FromPath, JSONBody

from common.faults import Fault, FaultInjector, FaultSpec, InvalidFault, UnknownActivity
from common.problems import bad_request, not_found, problems

T = TypeVar("T")


async def _answer(call: Awaitable[T]) -> T:
    try:
        return await call
    except UnknownActivity as err:
        raise not_found(str(err)) from err
    except InvalidFault as err:
        raise bad_request(str(err)) from err


@get("/", operation_id="listFaults")
async def list_faults(faults: NamedDependency[FaultInjector]) -> list[Fault]:
    return await faults.list()


@put("/{activity:str}", operation_id="setFault", responses=problems(400, 404, 413))
async def put_fault(faults: NamedDependency[FaultInjector], activity: FromPath[str], data: JSONBody[FaultSpec]) -> Fault:
    """Arm a fault on one of this app's activities (404 for another name), replacing the one it had.
    ``delay_ms`` goes with mode ``delay`` only (a 400 otherwise; JSON Schema cannot say it)."""
    return await _answer(faults.set(activity, data))


@delete("/", operation_id="clearFaults")
async def delete_faults(faults: NamedDependency[FaultInjector]) -> None:
    await faults.clear()


@delete("/{activity:str}", operation_id="clearFault", responses=problems(404))
async def delete_fault(faults: NamedDependency[FaultInjector], activity: FromPath[str]) -> None:
    await _answer(faults.clear(activity))


def fault_router(injector: FaultInjector) -> Router:
    """``/faults`` endpoints for one app; include it only when FAULTS_ENABLED is true."""
    return Router(
        path="/faults",
        route_handlers=[list_faults, put_fault, delete_faults, delete_fault],
        dependencies={"faults": Provide(lambda: injector, sync_to_thread=False)},
        tags=["faults"],
    )
