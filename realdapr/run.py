"""``python -m realdapr run -f dapr.yaml``: every app of a multi-app run template on real daprd.

What ``dapr run -f`` does, plus what it leaves to the user, in one supervised process tree: placement and
scheduler on local ports that do not clash with a ``dapr init`` install; the workflow state store in its own
database on ``POSTGRES_URL``; then per app one daprd and the app's command, each restarted when it exits on its
own (the CLI restarts nothing, so an app that crashes on purpose would stay dead). Every line of output, daprd's
included, goes to the console prefixed with its source. Ctrl-C or SIGTERM stops all of it.

This module starts, waits for and stops the processes; ``ports``, ``resources`` and ``commands`` decide what
they are. The Dapr CLI is not used: its 1.18 module is not served by the Go module proxy on this project's
machines, so it cannot be built here (README, "Running on real Dapr"). The daprd flags are those the CLI 1.18
passes.
"""

from __future__ import annotations

import asyncio
import logging
import os
from collections.abc import Callable
from pathlib import Path

from common.db import ensure_database, libpq_url
from devtools import health
from sidecar.supervisor import Supervisor
from sidecar.template import RunTemplate

from . import RunError
from .binaries import DaprBinaries
from .commands import Plan, plan
from .ports import DEFAULT_PLACEMENT_PORT, DEFAULT_SCHEDULER_PORT, ControlPlanePorts, check_ports_free, run_ports
from .resources import WORKFLOW_DB, write_config, write_resources

log = logging.getLogger("realdapr")

READY_TIMEOUT = 60.0


async def run(
    template: RunTemplate,
    dapr: DaprBinaries,
    *,
    postgres_url: str,
    data_dir: Path,
    workflow_db: str = WORKFLOW_DB,
    placement_port: int = DEFAULT_PLACEMENT_PORT,
    scheduler_port: int = DEFAULT_SCHEDULER_PORT,
    log_level: str = "info",
    ready_timeout: float = READY_TIMEOUT,
    on_signals: Callable[[Callable[[], None], Callable[[int], None]], None] | None = None,
) -> int:
    """Run the template until a stop signal; the exit code (1: it could not start, 128 + N: a second signal N
    killed everything). ``on_signals(stop, kill_now)`` installs the handlers of the first and later signals."""
    ports = ControlPlanePorts.from_bases(placement_port, scheduler_port)
    check_ports_free(run_ports(ports, template))
    await ensure_database(postgres_url, workflow_db)
    # pgx takes a postgres:// URL; the state store gets its own database, never a service's.
    resources = write_resources(template, data_dir / "resources", libpq_url(postgres_url, workflow_db))
    config = write_config(template, data_dir / "config.yaml")
    launches = plan(template, dapr, resources, config, data_dir, ports, dict(os.environ), log_level)

    stop = asyncio.Event()
    supervisors: list[Supervisor] = []
    forced: list[int] = []

    def kill_now_on_second_signal(signum: int) -> None:
        log.warning("second stop request: killing everything now")
        forced.append(signum)
        for supervisor in supervisors:
            supervisor.kill_now()

    if on_signals:
        on_signals(stop.set, kill_now_on_second_signal)
    log.info(
        "Dapr %s from %s (%s); placement 127.0.0.1:%d, scheduler 127.0.0.1:%d, workflow state in database %s",
        dapr.version,
        dapr.bin_dir,
        dapr.source,
        ports.placement,
        ports.scheduler,
        workflow_db,
    )
    failed = await _supervise(launches, stop, supervisors, ready_timeout)
    log.info("stopped")
    if failed:
        return 1
    return 128 + forced[0] if forced else 0


async def _supervise(launches: Plan, stop: asyncio.Event, supervisors: list[Supervisor], ready_timeout: float) -> bool:
    """Start the control plane, wait for it, start the daprds and apps, wait for the daprds, then hold until
    ``stop``; stop the apps before the control plane. Each supervisor started goes into ``supervisors`` (for a
    second signal to kill). True when the run failed to come up."""
    control = Supervisor(launches.control_plane)
    supervisors.append(control)
    control_stop = asyncio.Event()
    control_task = asyncio.create_task(control.run(control_stop))
    apps_stop = asyncio.Event()
    apps_task: asyncio.Task[None] | None = None
    try:
        await wait_healthy(launches.control_plane_health, stop, ready_timeout, "the Dapr control plane")
        if not stop.is_set():
            apps = Supervisor(launches.sidecars_and_apps)
            supervisors.append(apps)
            apps_task = asyncio.create_task(apps.run(apps_stop))
            await wait_healthy(launches.sidecar_health, stop, ready_timeout, "daprd")
            if not stop.is_set():
                log.info(
                    "all %d daprd sidecars are up; Ctrl-C or SIGTERM stops everything", len(launches.sidecar_health)
                )
            await stop.wait()
    except RunError as exc:
        log.error("%s", exc)
        return True
    finally:
        # Apps and their sidecars first, so nothing calls a control plane that is already gone.
        apps_stop.set()
        if apps_task is not None:
            await apps_task
        control_stop.set()
        await control_task
    return False


async def wait_healthy(urls: dict[str, str], stop: asyncio.Event, timeout: float, what: str) -> None:
    """Return once every URL answers 2xx (or ``stop`` is set); RunError after ``timeout`` naming those that did
    not."""
    try:
        await health.wait_healthy_async(urls, timeout, what, stop=stop)
    except health.NotHealthy as err:
        raise RunError(f"{err} (its log lines above say why)") from None
