"""``python -m realdapr run -f dapr.yaml``: every app of a multi-app run template on real daprd, as production runs it.

What ``dapr run -f`` does, plus what it leaves to the user, in one supervised process tree: sentry (the
certificate authority: mTLS on, as Kubernetes runs Dapr; its trust root made at the first start and kept in the
data folder), placement and scheduler on local ports that do not clash with a ``dapr init`` install; the workflow
state store in its own database on ``POSTGRES_URL``; then per app one daprd (with the access policies loaded and
workflow history signed) and the app's command, each restarted when it exits on its own (the CLI restarts nothing,
so an app that crashes on purpose would stay dead), and a watchdog that restarts a daprd that stays wedged, as a
liveness probe would. Every line of output, daprd's included, goes to the console prefixed with its source. Ctrl-C
or SIGTERM stops all of it. ``mtls=False`` runs as the Dapr CLI does: no sentry, no policies, no signing.

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
from devtools.ports import reserve
from sidecar.supervisor import Supervisor
from sidecar.template import RunTemplate

from . import RunError
from .binaries import DaprBinaries
from .commands import Mtls, Plan, plan, sentry_command
from .failures import startup_failure
from .ports import (
    DEFAULT_PLACEMENT_PORT,
    DEFAULT_SCHEDULER_PORT,
    DEFAULT_SENTRY_PORT,
    ControlPlanePorts,
    check_ports_free,
    run_ports,
    template_ports,
)
from .resources import WORKFLOW_DB, policy_folders, write_config, write_resources
from .trust import ensure_trust_root
from .watchdog import DEFAULT_GRACE, Watchdog, Watched

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
    sentry_port: int = DEFAULT_SENTRY_PORT,
    mtls: bool = True,
    policies: list[Path] | None = None,
    log_level: str = "info",
    ready_timeout: float = READY_TIMEOUT,
    watchdog_grace: float = DEFAULT_GRACE,
    on_signals: Callable[[Callable[[], None], Callable[[int], None]], None] | None = None,
) -> int:
    """Run the template until a stop signal; the exit code (1: it could not start, 128 + N: a second signal N
    killed everything). ``on_signals(stop, kill_now)`` installs the handlers of the first and later signals.
    With ``mtls`` (the default) sentry runs too, every process has its certificate, the access policies in
    ``policies`` (default: ``policy_folders``) are loaded and workflow history is signed. A ``watchdog_grace`` of
    0 turns the watchdog off."""
    reserve(port for port, _ in template_ports(template))
    ports = ControlPlanePorts.from_bases(placement_port, scheduler_port, sentry_port)
    check_ports_free(run_ports(ports, template, with_sentry=mtls))
    folders = policy_folders(template, policies) if mtls else []
    if not mtls and policies:
        log.warning("--no-mtls: the access policies are not loaded (without mTLS daprd would deny every caller)")
    await ensure_database(postgres_url, workflow_db)
    # pgx takes a postgres:// URL; the state store gets its own database, never a service's.
    resources = write_resources(template, data_dir / "resources", libpq_url(postgres_url, workflow_db))
    config = write_config(template, data_dir / "config.yaml", signing=mtls)
    security = None
    if mtls:
        # At info level whatever the run's: the first start waits for sentry's "persisted successfully" line.
        first_start = sentry_command(dapr, ports, data_dir, "info")
        anchors = await ensure_trust_root(first_start, data_dir / "sentry", data_dir)
        security = Mtls(f"127.0.0.1:{ports.sentry}", anchors)
    launches = plan(
        template, dapr, [resources, *folders], config, data_dir, ports, dict(os.environ), log_level, security
    )

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
    if security is not None:
        log.info(
            "mTLS on: sentry 127.0.0.1:%d, trust root %s; access policies from %s; workflow history signed",
            ports.sentry,
            security.trust_anchors.parent,
            ", ".join(map(str, folders)) or "nowhere (none found)",
        )
    else:
        log.info("mTLS off (--no-mtls): no sentry, no access policies, no history signing")
    failure = await _supervise(launches, stop, supervisors, ready_timeout, watchdog_grace)
    if failure:
        why = startup_failure(_tails(supervisors), security.sentry_address if security else None)
        log.error("%s", why or failure)
        if why:
            log.info("(%s)", failure)
    log.info("stopped")
    if failure:
        return 1
    return 128 + forced[0] if forced else 0


def _tails(supervisors: list[Supervisor]) -> dict[str, list[str]]:
    return {name: lines for supervisor in supervisors for name, lines in supervisor.tails().items()}


async def _supervise(
    launches: Plan, stop: asyncio.Event, supervisors: list[Supervisor], ready_timeout: float, grace: float
) -> str | None:
    """Start each stage (sentry, the control plane, the daprds and apps) once the one before answers; hold until
    ``stop``, the watchdog keeping an eye on every daprd; then stop the stages in reverse order. Each supervisor
    started goes into ``supervisors`` (for a second signal to kill). Returns why the run failed to come up, or None
    (also after a stop)."""
    running: list[tuple[asyncio.Event, asyncio.Task[None]]] = []
    try:
        for stage in launches.stages:
            if stop.is_set():
                break
            supervisor = Supervisor(stage.launches)
            supervisors.append(supervisor)
            stage_stop = asyncio.Event()
            running.append((stage_stop, asyncio.create_task(supervisor.run(stage_stop))))
            await wait_healthy(stage.health, stop, ready_timeout, stage.what)
        if stop.is_set():
            return None
        log.info("all %d daprd sidecars are up; Ctrl-C or SIGTERM stops everything", len(launches.daprd))
        if grace > 0:
            daprds = supervisors[-1]
            watched = [Watched(app, d.launch, d.http) for app, d in launches.daprd.items()]
            watchdog = Watchdog(watched, daprds.restart, grace=grace)
            await watchdog.run(stop)
        await stop.wait()
    except RunError as exc:
        return str(exc)
    finally:
        # Apps and their sidecars first, so nothing calls a control plane that is already gone.
        for stage_stop, task in reversed(running):
            stage_stop.set()
            await task
    return None


async def wait_healthy(urls: dict[str, str], stop: asyncio.Event, timeout: float, what: str) -> None:
    """Return once every URL answers 2xx (or ``stop`` is set); RunError after ``timeout`` naming those that did
    not."""
    try:
        await health.wait_healthy_async(urls, timeout, what, stop=stop)
    except health.NotHealthy as err:
        raise RunError(f"{err} (its log lines above say why)") from None
