"""The ``/faults`` HTTP endpoints of one app (see ``common.faults`` for the modes): list, set, clear. Mounted
only when FAULTS_ENABLED=true, and answering loopback clients only unless FAULTS_ALLOW_REMOTE=true (an app bound
to another address must not let the network crash it); errors leave as problem details (a remote client 403,
unknown activity 404, bad combination 400)."""

from __future__ import annotations

from collections.abc import Awaitable
from typing import Any, TypeVar

from litestar import Router, delete, get, put
from litestar.connection import ASGIConnection
from litestar.di import NamedDependency, Provide
from litestar.handlers.base import BaseRouteHandler
from litestar.params import FromPath, JSONBody
from litestar.types import Guard

from common.faults import Fault, FaultInjector, FaultSpec, InvalidFault, UnknownActivity
from common.problems import bad_request, not_found, problem, problems

T = TypeVar("T")
LOOPBACK = frozenset({"127.0.0.1", "::1", "localhost"})


async def _as_problem(call: Awaitable[T]) -> T:
    """``await call``, a fault store's refusal raised as the problem details it stands for (404, 400)."""
    try:
        return await call
    except UnknownActivity as err:
        raise not_found(str(err)) from err
    except InvalidFault as err:
        raise bad_request(str(err)) from err


@get("/", operation_id="listFaults", responses=problems(403))
async def list_faults(faults: NamedDependency[FaultInjector]) -> list[Fault]:
    return await faults.list()


@put("/{activity:str}", operation_id="setFault", responses=problems(400, 403, 404, 413))
async def put_fault(
    faults: NamedDependency[FaultInjector], activity: FromPath[str], data: JSONBody[FaultSpec]
) -> Fault:
    """Arm a fault on one of this app's activities (404 for another name), replacing the one it had.
    ``delay_ms`` goes with mode ``delay`` only (a 400 otherwise; JSON Schema cannot say it)."""
    return await _as_problem(faults.set(activity, data))


@delete("/", operation_id="clearFaults", responses=problems(403))
async def delete_faults(faults: NamedDependency[FaultInjector]) -> None:
    await faults.clear()


@delete("/{activity:str}", operation_id="clearFault", responses=problems(403, 404))
async def delete_fault(faults: NamedDependency[FaultInjector], activity: FromPath[str]) -> None:
    await _as_problem(faults.clear(activity))


def fault_router(injector: FaultInjector, allow_remote: bool = False) -> Router:
    """``/faults`` endpoints for one app; include it only when FAULTS_ENABLED is true."""
    return Router(
        path="/faults",
        route_handlers=[list_faults, put_fault, delete_faults, delete_fault],
        dependencies={"faults": Provide(lambda: injector, sync_to_thread=False)},
        guards=[] if allow_remote else [loopback_only],
        tags=["faults"],
    )


def on_this_machine(host: str | None) -> bool:
    """Whether a client at ``host`` is on this machine (the only clients fault controls answer by default)."""
    return host in LOOPBACK


def local_only(what: str, setting: str) -> Guard:
    """A guard: a client not on this machine gets a 403 problem saying that ``what`` answers clients on this
    machine only, and which ``setting`` opens it."""

    def guard(connection: ASGIConnection[Any, Any, Any, Any], _: BaseRouteHandler) -> None:
        host = connection.client.host if connection.client else None
        if not on_this_machine(host):
            raise problem(
                403, f"{what} answer clients on this machine only, not {host}; set {setting}=true to open them"
            )

    return guard


# For the fault endpoints, and for anything else that sets faults (the order-api's console).
loopback_only = local_only("the fault endpoints", "FAULTS_ALLOW_REMOTE")
