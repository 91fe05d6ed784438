"""The final report of a chaos run, as text: the run, the disruptions caused (by kind), how the orders ended (by
status, and by workload kind), and every violation with its order, what was expected and what was found."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass

from .checks import Findings
from .injector import Event


@dataclass(frozen=True)
class RunInfo:
    engine: str
    seed: int
    orders: int
    concurrency: int
    started: str  # UTC, ISO
    duration_s: float
    workload_s: float
    settle_s: float
    unanswered: int
    unsettled: int  # orders still not ended when the settle timeout passed


def disruption_counts(events: list[Event]) -> Counter[str]:
    counts: Counter[str] = Counter()
    for e in events:
        d = e.disruption
        key = f"fault {d.mode}" + (
            " (aimed at an undo)"
            if d.mode == "error" and d.order_id and d.activity in ("release_inventory", "refund", "cancel_shipment")
            else ""
        )
        if d.kind == "kill_control_plane":
            key = f"kill {d.app}"
        elif d.kind != "fault":
            key = d.kind
        counts[key] += 1
        if not e.done:
            counts["  of which could not be carried out"] += 1
    return counts


def render(info: RunInfo, events: list[Event], found: Findings) -> str:
    lines = [
        (
            f"chaos run: engine {info.engine}, seed {info.seed}, {info.orders} orders at concurrency "
            f"{info.concurrency}, started {info.started}"
        ),
        (
            f"duration {info.duration_s:.0f} s (workload {info.workload_s:.0f} s, settle {info.settle_s:.0f} s); "
            f"{info.unanswered} requests repeated while the system was down"
        ),
        "",
        f"disruptions caused: {len(events)}",
    ]
    lines += [f"  {kind:<40}{n:>6}" for kind, n in sorted(disruption_counts(events).items())]
    faults = Counter(f"{e.disruption.activity}" for e in events if e.disruption.kind == "fault")
    if faults:
        lines.append("  faults by activity: " + ", ".join(f"{a} {n}" for a, n in sorted(faults.items())))
    lines += ["", "order endings:"]
    lines += [f"  {status:<40}{n:>6}" for status, n in sorted(found.endings.items())]
    lines.append(
        "  by workload kind: "
        + "; ".join(
            f"{kind}: " + ", ".join(f"{s} {n}" for s, n in sorted(c.items()))
            for kind, c in sorted(found.by_kind.items())
        )
    )
    if found.causes:
        lines.append("  why not completed: " + ", ".join(f"{c} {n}" for c, n in sorted(found.causes.items())))
    if found.aimed_undo_errors:
        lines.append(
            "  errors aimed at an order's undo: "
            + ", ".join(f"{what} {n}" for what, n in sorted(found.aimed_undo_errors.items()))
        )
    for what, counted in (
        (
            "needed an operator (their saga workflow failed outside the saga; resolved by POST /orders/{id}/resolve)",
            found.operator_resolved,
        ),
        (
            "concluded by their saga, then failed by the engine (the stored ending stands)",
            found.failed_after_concluding,
        ),
        (
            "concluded by their saga, then stopped by the stall rule, a step's result lost (the stored ending stands)",
            found.stopped_after_concluding,
        ),
    ):
        if counted:
            lines.append(f"  {what}: {counted.total()}: " + "; ".join(f"{k} {n}" for k, n in sorted(counted.items())))
    if found.stale_rows:
        lines.append(
            f"  stored status behind the saga (its record_order_status failed, and it says so): {found.stale_rows}"
        )
    if info.unsettled:
        lines.append(f"  not ended within the settle timeout: {info.unsettled}")
    lines += ["", f"violations: {len(found.violations)}"]
    for v in found.violations:
        lines.append(f"  {v.order_id}: {v.invariant}: expected {v.expected}; found {v.found}")
    return "\n".join(lines)
