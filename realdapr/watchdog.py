"""A liveness probe for every daprd of a run, as Kubernetes would run one, and the restart it leads to.

Per daprd, every few seconds: ``GET /v1.0/healthz`` and ``GET /v1.0/metadata`` (with the run's API token). A daprd
is unwell when its health endpoint does not answer 2xx; when its actor runtime is not running, not connected to
placement or its host not ready; or when its app's workflow worker is connected (``workflows.connectedWorkers``)
while the app's workflow actor type is missing from the actors it hosts (``actors``, the very table whose miss
daprd logs as "actor type ... not registered": the wedge of dapr/dapr 9070 and of this project's chaos runs, which
only a restart of that daprd ends); or when its app answers its health check (``/healthz`` on the app port the
metadata names) while daprd counts no workflow worker of it and hosts no workflow actor type: the wedge as a
default 1,000-order chaos run on daprd 1.18.2 caught it (2026-12-07), the app's worker stream open on daprd's gRPC
port and daprd's metadata without ``workflows`` or ``actors``, for minutes, until that daprd was restarted
(``tests/unit/tools/recorded``). One that stays unwell for ``grace`` seconds is restarted as Kubernetes restarts
a container that fails its liveness probe (SIGTERM, SIGKILL after the supervisor's grace), with one warning line
saying why, and its supervisor starts it again.

What it does not judge: an app that is down or restarting (no worker connected, no actor type: daprd is right not
to host them). An app that is up and whose worker stays unconnected for the grace gets its daprd restarted, which
also makes the worker connect again. ``verdict`` is the decision on one observation, pure; ``Watchdog`` polls and
acts.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import httpx

log = logging.getLogger("realdapr")

DEFAULT_GRACE = 30.0
APP_HEALTH_PATH = "/healthz"  # every app's (common.runner.healthz)
CONNECTED = "placement: connected"
# The names daprd may give an app channel on its own (the pod's) loopback.
LOOPBACK_HOSTS = frozenset({"127.0.0.1", "localhost", "::1", "[::1]"})


@dataclass(frozen=True)
class Observation:
    """One look at a daprd: its health status code (None: no answer) and its metadata (None: no answer); and
    whether its app answered its own health check (None: not asked, or no app port in the metadata)."""

    healthz: int | None
    metadata: dict[str, Any] | None
    app_up: bool | None = None


def workflow_actor_type(app_id: str, namespace: str = "default") -> str:
    return f"dapr.internal.{namespace}.{app_id}.workflow"


def verdict(app_id: str, seen: Observation, namespace: str = "default") -> str | None:
    """Why the daprd of ``app_id`` looks unwell in ``seen``, or None when it looks well."""
    if seen.healthz is None:
        return "/v1.0/healthz does not answer"
    if not 200 <= seen.healthz < 300:
        return f"/v1.0/healthz answers {seen.healthz}"
    metadata = seen.metadata
    if metadata is None:
        return "/v1.0/metadata does not answer"
    runtime = metadata.get("actorRuntime") or {}
    status = runtime.get("runtimeStatus")
    if status != "RUNNING":
        return f"its actor runtime is {status or 'absent'}"
    if runtime.get("placement") != CONNECTED:
        return f"its actor runtime says {runtime.get('placement') or 'nothing'} about placement"
    if not runtime.get("hostReady"):
        return "its actor host is not ready"
    workers = int((metadata.get("workflows") or {}).get("connectedWorkers") or 0)
    hosted = {entry.get("type") for entry in metadata.get("actors") or []}
    wanted = workflow_actor_type(app_id, namespace)
    if workers > 0 and wanted not in hosted:
        return (
            f"{workers} workflow worker{'s' if workers > 1 else ''} of {app_id} connected, but actor type {wanted} "
            f"is not hosted (hosted: {', '.join(sorted(t for t in hosted if t)) or 'none'})"
        )
    if seen.app_up and workers == 0 and wanted not in hosted:
        return f"{app_id} answers its health check, but daprd counts no workflow worker of it and hosts no {wanted}"
    return None


async def observe(
    client: httpx.AsyncClient, base_url: str, token: str | None, app_health_path: str = APP_HEALTH_PATH
) -> Observation:
    """``GET /v1.0/healthz`` and ``/v1.0/metadata`` of the daprd at ``base_url``, and its app's health check on the
    app address the metadata names (``_app_up``)."""
    healthz: int | None = None
    metadata: dict[str, Any] | None = None
    with contextlib.suppress(httpx.HTTPError):
        healthz = (await client.get(f"{base_url}/v1.0/healthz")).status_code
    headers = {"dapr-api-token": token} if token else {}
    with contextlib.suppress(httpx.HTTPError, ValueError):
        response = await client.get(f"{base_url}/v1.0/metadata", headers=headers)
        if response.is_success:
            metadata = response.json()
    return Observation(healthz, metadata, await _app_up(client, base_url, metadata, app_health_path))


async def _app_up(client: httpx.AsyncClient, base_url: str, metadata: dict[str, Any] | None, path: str) -> bool | None:
    """Whether the app answers its health check at the address daprd's metadata names. A loopback address means the
    app shares daprd's network namespace (a pod), so it is asked where daprd itself is reached, as a kubelet's probe
    reaches a pod by its address: in a cluster run the watchdog is outside the pods, and its own loopback is not
    theirs; on one host the two are the same."""
    app = (metadata or {}).get("appConnectionProperties") or {}
    if not app.get("port"):
        return None
    channel = app.get("channelAddress") or "127.0.0.1"
    if channel in LOOPBACK_HOSTS:
        url = httpx.URL(base_url).copy_with(port=int(app["port"]), path=path)
    else:
        url = httpx.URL(f"http://{channel}:{app['port']}{path}")
    try:
        answer = await client.get(url)
    except httpx.HTTPError:
        return False
    return answer.is_success


@dataclass(frozen=True)
class Watched:
    """A daprd to watch: its app, the name its supervisor knows it by, and its HTTP API."""

    app_id: str
    launch: str
    http: str


class Watchdog:
    """Polls every watched daprd; calls ``restart(launch)`` for one that stays unwell for ``grace`` seconds."""

    def __init__(
        self,
        watched: list[Watched],
        restart: Callable[[str], bool],
        *,
        grace: float = DEFAULT_GRACE,
        token: str | None = None,
        env: Mapping[str, str] = os.environ,
    ) -> None:
        self.watched = watched
        self.restart = restart
        self.grace = grace
        self.every = max(0.5, min(5.0, grace / 5))
        self.token = token if token is not None else env.get("DAPR_API_TOKEN")
        self.namespace = env.get("NAMESPACE") or "default"
        self.restarts: list[tuple[str, str]] = []  # (app id, reason), for tests and reports

    async def run(self, stop: asyncio.Event) -> None:
        """Watch until ``stop`` is set."""
        async with httpx.AsyncClient(timeout=min(2.0, self.every)) as client:
            await asyncio.gather(*(self._watch(client, one, stop) for one in self.watched))

    async def _watch(self, client: httpx.AsyncClient, one: Watched, stop: asyncio.Event) -> None:
        loop = asyncio.get_running_loop()
        unwell_since: float | None = None
        while not stop.is_set():
            seen = await observe(client, one.http, self.token)
            reason = verdict(one.app_id, seen, self.namespace)
            now = loop.time()
            if reason is None:
                unwell_since = None
            elif unwell_since is None:
                unwell_since = now
            elif now - unwell_since >= self.grace and not stop.is_set():
                log.warning(
                    "watchdog: restarting %s: unwell for %.0f s (grace %.0f s): %s",
                    one.launch,
                    now - unwell_since,
                    self.grace,
                    reason,
                )
                self.restarts.append((one.app_id, reason))
                self.restart(one.launch)
                unwell_since = None
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), self.every)
