"""The cure for Dapr 1.18.2's placement split brain after a network partition.

daprd's placement client has no keepalive. Placement drops a host whose stream is silent for about 5 s (its own
keepalive), but the daprd on that host, once the partition heals, keeps its half-open TCP connection for ever: it
still says "placement: connected", still routes actors with its stale table, and never rejoins (research16: over 4
minutes, and the same actor active on two hosts). A scheduler stream has gRPC keepalive and comes back by itself.

``PlacementHealer`` polls placement's own view (``/placement/state`` on its health port, ``--metadata-enabled``)
and each daprd's metadata. A daprd that says it is connected while placement has not listed its host for ``grace``
seconds gets its connections to placement destroyed (``ss -K`` in its namespace), as a client keepalive would end
them; it then reconnects within a second. ``missing`` is the decision, pure.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

import httpx

log = logging.getLogger("realdapr.cluster")

DEFAULT_GRACE = 10.0
EVERY = 2.0


@dataclass(frozen=True)
class Member:
    """A daprd placement should list: its pod, its ``address:internal-grpc-port`` and its HTTP API."""

    pod: str
    placement_name: str
    api: str


def listed_hosts(state: Mapping[str, Any]) -> set[str]:
    """Every ``address:port`` in placement's ``/placement/state`` answer, across its tables."""
    tables = state.get("tables") or {}
    return {str(h.get("name")) for table in tables.values() for h in (table or {}).get("hosts") or []}


def missing(members: Iterable[Member], listed: set[str], connected: Mapping[str, bool]) -> list[Member]:
    """The members that say they are connected to placement while placement does not list them."""
    return [m for m in members if connected.get(m.pod) and m.placement_name not in listed]


class PlacementHealer:
    """Polls until ``stop``; ``cut(pod)`` destroys that pod's connections to placement."""

    def __init__(
        self, placement_state: str, members: list[Member], cut: Callable[[str], None], grace: float = DEFAULT_GRACE
    ) -> None:
        self.placement_state, self.members, self.cut, self.grace = placement_state, members, cut, grace
        self.cuts: list[str] = []  # pods healed, for tests and the log

    async def run(self, stop: asyncio.Event) -> None:
        loop = asyncio.get_running_loop()
        since: dict[str, float] = {}
        async with httpx.AsyncClient(timeout=2.0) as client:
            while not stop.is_set():
                listed = await self._listed(client)
                if listed is not None:
                    connected = {m.pod: await _connected(client, m.api) for m in self.members}
                    now = loop.time()
                    lost = {m.pod for m in missing(self.members, listed, connected)}
                    for pod in list(since):
                        if pod not in lost:
                            del since[pod]
                    for pod in lost:
                        started = since.setdefault(pod, now)
                        if now - started >= self.grace and not stop.is_set():
                            log.warning(
                                "placement heal: %s says it is connected, but placement has not listed it for %.0f s "
                                "(a half-open stream after a partition): dropping its connections to placement",
                                pod,
                                now - started,
                            )
                            self.cuts.append(pod)
                            await asyncio.to_thread(self.cut, pod)
                            del since[pod]
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(stop.wait(), EVERY)

    async def _listed(self, client: httpx.AsyncClient) -> set[str] | None:
        try:
            response = await client.get(self.placement_state)
            return listed_hosts(response.json()) if response.is_success else None
        except (httpx.HTTPError, ValueError):
            return None


async def _connected(client: httpx.AsyncClient, api: str) -> bool:
    """Whether the daprd says it is connected to placement and hosts actor types: placement lists only hosts with
    types, so one without (its app down or restarting) is rightly not listed and must not be cut (a chaos run that
    cut those cut a reconnecting daprd every 10 s)."""
    try:
        response = await client.get(f"{api}/v1.0/metadata")
        metadata = response.json() or {}
    except (httpx.HTTPError, ValueError):
        return False
    runtime = metadata.get("actorRuntime") or {}
    hosted = [entry for entry in metadata.get("actors") or [] if entry.get("type")]
    return bool(runtime.get("placement") == "placement: connected" and hosted)
