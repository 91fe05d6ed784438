"""The ports of a real-Dapr run: the control plane's (fixed next to a base, or free), and the check that none of
the fixed ones a run needs is already taken. Built on ``devtools.ports``."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, fields

from devtools.ports import free_port, taken_ports
from sidecar.template import RunTemplate

from . import RunError

# Below 32768 (outbound sockets take ports from 32768-60999) and away from what `dapr init` publishes
# (placement 50005, scheduler 50006, Redis 6379, Zipkin 9411) and the CLI's defaults (50001, 9090, 7777).
DEFAULT_PLACEMENT_PORT = 6050
DEFAULT_SCHEDULER_PORT = 6060
DEFAULT_SENTRY_PORT = 6070


@dataclass(frozen=True)
class ControlPlanePorts:
    placement: int
    placement_health: int
    placement_metrics: int
    placement_raft: int
    scheduler: int
    scheduler_health: int
    scheduler_metrics: int
    etcd_client: int
    etcd_peer: int
    sentry: int
    sentry_health: int
    sentry_metrics: int

    @classmethod
    def from_bases(cls, placement: int, scheduler: int, sentry: int = 0) -> ControlPlanePorts:
        """Fixed ports next to each base, or free ports for a base of 0 (what tests use). Sentry's are taken
        whether or not the run has mTLS: a few ports, and the check of taken ones stays the same."""

        def near(base: int, offset: int) -> int:
            return base + offset if base else free_port()

        return cls(
            near(placement, 0),
            near(placement, 1),
            near(placement, 2),
            near(placement, 3),
            near(scheduler, 0),
            near(scheduler, 1),
            near(scheduler, 2),
            near(scheduler, 3),
            near(scheduler, 4),
            near(sentry, 0),
            near(sentry, 1),
            near(sentry, 2),
        )

    def named(self, with_sentry: bool = True) -> list[tuple[int, str]]:
        """(port, "placement NAME", "scheduler NAME" or "sentry NAME") for each port, for messages about taken
        ones; without sentry's when ``with_sentry`` is false (a run without mTLS does not listen on them)."""
        named = []
        for field in fields(self):
            owner = next((o for o in ("placement", "sentry") if field.name.startswith(o)), "scheduler")
            if owner == "sentry" and not with_sentry:
                continue
            named.append((getattr(self, field.name), f"{owner} {field.name}"))
        return named


def run_ports(ports: ControlPlanePorts, template: RunTemplate, with_sentry: bool = True) -> list[tuple[int, str]]:
    """Every fixed port a run of ``template`` listens on, named: the control plane's (sentry's with mTLS), then
    each app's own and its daprd's that the template sets."""
    return ports.named(with_sentry) + template_ports(template)


def template_ports(template: RunTemplate) -> list[tuple[int, str]]:
    """The ports the template sets for each app and its daprd, named. Whoever wrote the template chose them, maybe
    as free ports of its own that nothing listens on yet: a run reserves them (``devtools.ports.reserve``) before it
    picks any free port, or it could pick one of them for something else."""
    return [
        (port, f"{app.app_id} {what}")
        for app in template.apps
        for what, port in (("appPort", app.app_port), ("daprGRPCPort", app.grpc_port), ("daprHTTPPort", app.http_port))
        if port
    ]


def check_ports_free(ports: Iterable[tuple[int, str]]) -> None:
    """Raise RunError naming every fixed port something else already listens on."""
    taken = taken_ports(ports)
    if taken:
        raise RunError(
            f"port{'s' if len(taken) > 1 else ''} already in use: {', '.join(taken)}. Stop what holds "
            "them (another `make run` or `make run-dapr`?) or change the ports in the template."
        )
