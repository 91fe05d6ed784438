"""The seeded plan of a chaos run: every order (its kind, body and, for a cancel, when to cancel it) and every
disruption (what, and after which order's submission). Pure: the same seed and options give the same plan.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field, replace
from typing import Any

from common.contracts import INVENTORY, NOTIFICATION, ORDER_API, PAYMENT, SHIPPING
from common.scenarios import LARGE

# Where each activity runs, in saga order; the undos are the compensations.
ACTIVITIES: dict[str, str] = {
    "validate_order": "inventory",
    "reserve_inventory": "inventory",
    "release_inventory": "inventory",
    "assess_risk": "payment",  # in payment's risk review, the saga's child workflow
    "charge": "payment",
    "refund": "payment",
    "ship": "shipping",
    "cancel_shipment": "shipping",
    "notify": "notification",
    "record_order_status": "order-api",
}
UNDOS = ("release_inventory", "refund", "cancel_shipment")
MODES = ("error", "transient", "delay", "crash_before", "crash_after")
APPS = (ORDER_API, INVENTORY, PAYMENT, SHIPPING, NOTIFICATION)  # in this order: a seed picks from it by index

# The workload's kinds and their shares. A review_* order is large enough that payment's risk review (its default
# thresholds) leaves it to a person, who approves it, rejects it, or lets its deadline pass.
KINDS = {
    "happy": 0.45,
    "declined": 0.12,
    "out_of_stock": 0.08,
    "undeliverable": 0.10,
    "cancel": 0.15,
    "review_approved": 0.04,
    "review_rejected": 0.03,
    "review_timeout": 0.03,
}
DECISIONS = {"review_approved": "approve", "review_rejected": "reject", "review_timeout": None}
# How long a person has in a chaos run (APPROVAL_TIMEOUT_SECONDS, chaos.system); a decision comes well before it.
APPROVAL_TIMEOUT_S = 8
# How long the order-api lets a saga show one step in flight before it takes the step's result as lost and hands
# the order to the operator (STALL_AFTER_SECONDS; chaos.system, chaos.cluster): longer than any disruption lasts (a
# node pause is at most a minute, a step's retries about 14 s), short enough to act within the settle timeout.
STALL_AFTER_S = 150
DECIDE_WITHIN_S = 3.0
# Which undos run when an order of a kind unwinds by itself (the kinds a targeted undo error can pick).
UNWINDS = {
    "declined": ("release_inventory", "refund"),
    "out_of_stock": ("release_inventory",),
    "undeliverable": ("release_inventory", "refund", "cancel_shipment"),
}
# Stock the run sets before it starts: plenty of most things, a scarce hoodie that happy orders compete for,
# and the demo's three lamps that out-of-stock orders ask too many of.
PLENTIFUL = ("SKU-MUG", "SKU-TEE", "SKU-CAP", "SKU-STICKERS", "SKU-NOTEBOOK", "SKU-BOTTLE", "SKU-TOTE")
SCARCE = "SKU-HOODIE"
LAMP = "SKU-LAMP"
SERVED = ("GB", "US", "DE", "FR", "NL", "SE", "JP", "AU", "CA")
# Below the saga's retry budget in a chaos run (devtools.launcher env in chaos.system), so a transient fault is
# always retried past: it may slow an order, never end it.
MAX_TRANSIENT = 3

DISRUPTIONS = ("fault", "kill_app", "kill_runner", "restart_postgres", "kill_daprd", "kill_control_plane")
# Only real Dapr has these processes: one daprd per app, and placement, scheduler and sentry.
DAPR_ONLY = frozenset({"kill_daprd", "kill_control_plane"})
CONTROL_PLANE = ("placement", "scheduler", "sentry")
# Only a cluster (``--topology cluster``, realdapr.cluster) has nodes to crash, pause and cut off; it has no runner
# restart of its own in a run (a runner's SIGKILL there is covered by tests/e2e/test_cluster.py).
CLUSTER_ONLY = frozenset({"crash_node", "pause_node", "partition_node"})
ALL_DISRUPTIONS = (*DISRUPTIONS, "crash_node", "pause_node", "partition_node")  # a plan's default: DISRUPTIONS
NODES = ("n1", "n2")
PAUSE_S = (3, 60)  # a node paused for seconds to a minute
PARTITION_S = (5, 40)  # longer than placement's keepalive (about 5 s): the split brain research16 found


@dataclass(frozen=True)
class PlannedOrder:
    index: int
    order_id: str
    kind: str
    body: dict[str, Any]
    cancel_after_s: float | None = None  # cancel kind: how long after submitting
    decision: str | None = None  # review kinds: "approve" or "reject" (None: nobody decides)
    decide_after_s: float | None = None  # how long after it awaits approval


@dataclass(frozen=True)
class Disruption:
    at: int  # happens once order ``at`` has been submitted
    kind: str  # one of ALL_DISRUPTIONS
    app: str | None = None
    activity: str | None = None
    mode: str | None = None
    count: int | None = None
    delay_ms: int | None = None
    order_id: str | None = None
    while_: str | None = None  # a kill aimed at ``order_id``: "reviewing" (its risk review runs) or "awaiting"
    seconds: int | None = None  # how long a node stays paused or cut off (``app`` holds the node)

    def fault_body(self) -> dict[str, Any]:
        body: dict[str, Any] = {"mode": self.mode, "count": self.count}
        if self.delay_ms is not None:
            body["delay_ms"] = self.delay_ms
        if self.order_id is not None:
            body["order_id"] = self.order_id
        return body

    def describe(self) -> str:
        if self.kind == "fault":
            extra = "".join(
                f" {k}={v}"
                for k, v in (("count", self.count), ("delay_ms", self.delay_ms), ("order_id", self.order_id))
                if v is not None
            )
            return f"fault {self.app}/{self.activity} {self.mode}{extra}"
        if self.kind == "kill_app" and self.while_ == "reviewing":
            return f"SIGKILL app {self.app} while {self.order_id} is in its risk review (a child workflow)"
        if self.kind == "kill_app" and self.while_ == "awaiting":
            return f"SIGKILL app {self.app} while {self.order_id} awaits approval"
        if self.kind == "kill_app":
            return f"SIGKILL app {self.app}"
        if self.kind == "kill_runner":
            return "SIGKILL the runner, then restart it on the same state"
        if self.kind == "kill_daprd":
            return f"SIGKILL the daprd of {self.app}"
        if self.kind == "kill_control_plane":
            return f"SIGKILL {self.app}"
        if self.kind == "crash_node":
            return f"node crash: SIGKILL every process of {self.app} (its pods restart)"
        if self.kind == "pause_node":
            return f"node pause: SIGSTOP every process of {self.app} for {self.seconds} s, then SIGCONT"
        if self.kind == "partition_node":
            return f"partition: {self.app} cut off from the other node, control plane and database for {self.seconds} s"
        return "PostgreSQL restart -m immediate"


@dataclass(frozen=True)
class Plan:
    seed: int
    orders: list[PlannedOrder]
    disruptions: list[Disruption] = field(default_factory=list)


def make_plan(seed: int, orders: int, enabled: frozenset[str] = frozenset(DISRUPTIONS)) -> Plan:
    """The plan for ``orders`` orders and the disruptions of the ``enabled`` kinds. The kinds only real Dapr has are
    drawn last, so they leave the moments of the others as they are for the same seed."""
    if orders < 1:
        raise ValueError("a chaos run needs at least one order")
    rng = random.Random(seed)
    planned = [_order(rng, seed, i) for i in range(orders)]
    disruptions: list[Disruption] = []
    if "fault" in enabled:
        disruptions += _faults(rng, planned)
    counts = {
        "kill_app": max(3, orders // 80),
        "kill_runner": max(1, orders // 250),
        "restart_postgres": max(1, orders // 250),
    }
    for kind, count in counts.items():
        if kind in enabled:
            disruptions += [_disruption(rng, orders, kind, i) for i in range(count)]
    if "kill_app" in enabled:
        disruptions += _kills_in_reviews(rng, planned, "fault" in enabled)
    # Drawn last, so that on real Dapr the other kinds keep the moments they have on the sidecar for a seed.
    dapr_counts = {"kill_daprd": max(2, orders // 125), "kill_control_plane": max(len(CONTROL_PLANE), orders // 170)}
    for kind, count in dapr_counts.items():
        if kind in enabled:
            disruptions += [_disruption(rng, orders, kind, i) for i in range(count)]
    # A cluster's own blows, drawn after everything else for the same reason.
    node_counts = {"crash_node": max(1, orders // 300), "pause_node": max(1, orders // 300)}
    node_counts["partition_node"] = max(1, orders // 300)
    for kind, count in node_counts.items():
        if kind in enabled:
            disruptions += [_disruption(rng, orders, kind, i) for i in range(count)]
    disruptions.sort(key=lambda d: d.at)  # stable: equal ``at`` keep their (seeded) order
    return Plan(seed, planned, disruptions)


def _disruption(rng: random.Random, orders: int, kind: str, i: int) -> Disruption:
    at = _when(rng, orders)
    if kind in ("kill_app", "kill_daprd"):
        return Disruption(at, kind, app=rng.choice(APPS))
    if kind == "kill_control_plane":  # each of them in turn, so that every one is hit
        return Disruption(at, kind, app=CONTROL_PLANE[i % len(CONTROL_PLANE)])
    if kind == "crash_node":
        return Disruption(at, kind, app=rng.choice(NODES))
    if kind in ("pause_node", "partition_node"):
        low, high = PAUSE_S if kind == "pause_node" else PARTITION_S
        return Disruption(at, kind, app=rng.choice(NODES), seconds=rng.randint(low, high))
    return Disruption(at, kind)


def _kills_in_reviews(rng: random.Random, planned: list[PlannedOrder], faults: bool) -> list[Disruption]:
    """App kills aimed at review orders: payment or the order-api killed while the order's risk review (the child
    workflow) runs, held there by a delay on its assess_risk when faults are on; the order-api killed while the
    order awaits approval (it holds the saga's wait and its timer)."""
    reviews = [o for o in planned if o.kind in DECISIONS]
    out: list[Disruption] = []
    for order in rng.sample(reviews, min(len(reviews), max(2, len(planned) // 100))):
        at = max(0, order.index - 1)  # armed before the order is sent, killed once it is in its review
        if faults:
            out.append(
                Disruption(at, "fault", PAYMENT, "assess_risk", "delay", 1, rng.randint(2000, 4000), order.order_id)
            )
        out.append(
            Disruption(at, "kill_app", rng.choice((PAYMENT, ORDER_API)), order_id=order.order_id, while_="reviewing")
        )
    for order in rng.sample(reviews, min(len(reviews), max(2, len(planned) // 100))):
        out.append(Disruption(order.index, "kill_app", ORDER_API, order_id=order.order_id, while_="awaiting"))
    return out


def _when(rng: random.Random, orders: int) -> int:
    """Somewhere in the middle of the run, while orders are in flight."""
    return rng.randint(orders * 3 // 100, max(orders * 3 // 100, orders * 85 // 100))


def _order(rng: random.Random, seed: int, i: int) -> PlannedOrder:
    kind = rng.choices(list(KINDS), weights=list(KINDS.values()))[0]
    items = [{"sku": sku, "quantity": rng.randint(1, 3)} for sku in rng.sample(PLENTIFUL, rng.randint(1, 2))]
    if kind in ("happy", "cancel") and rng.random() < 0.2:
        items.append({"sku": SCARCE, "quantity": rng.randint(1, 2)})
    if kind == "out_of_stock":
        items.append({"sku": LAMP, "quantity": rng.randint(4, 10)})
    if kind in DECISIONS:
        items = [{"sku": sku, "quantity": quantity} for sku, quantity in LARGE]
    body: dict[str, Any] = {
        "order_id": f"chaos-{seed}-{i:05d}",
        "customer_id": f"c-{rng.randint(1, 200)}",
        "email": f"customer{i}@example.com",
        "items": items,
        "payment": {"method": "card", "token": "tok_declined" if kind == "declined" else "tok_visa"},
        "shipping_address": {
            "name": "Ada Lovelace",
            "line1": "12 St James Sq",
            "city": "London",
            "postal_code": "SW1Y 4JH",
            "country": "AQ" if kind == "undeliverable" else rng.choice(SERVED),
        },
    }
    cancel = round(rng.uniform(0.0, 2.0), 2) if kind == "cancel" else None
    decide = round(rng.uniform(0.1, DECIDE_WITHIN_S), 2) if DECISIONS.get(kind) else None
    return PlannedOrder(i, body["order_id"], kind, body, cancel, DECISIONS.get(kind), decide)


def _faults(rng: random.Random, planned: list[PlannedOrder]) -> list[Disruption]:
    """Every mode on every activity at least once, then as many again at random (about 4 per 100 orders)."""
    pairs = [(activity, mode) for activity in ACTIVITIES for mode in MODES]
    rng.shuffle(pairs)
    pairs += [(rng.choice(list(ACTIVITIES)), rng.choice(MODES)) for _ in range(len(planned) * 4 // 100)]
    faults = [_fault(rng, planned, _when(rng, len(planned)), activity, mode) for activity, mode in pairs]
    return _keep_aimed_undo_errors(faults, {o.order_id: o.index for o in planned}, len(planned))


def _keep_aimed_undo_errors(faults: list[Disruption], index: dict[str, int], orders: int) -> list[Disruption]:
    """A PUT replaces an activity's fault: move later faults on an undo away from an error aimed at an order
    until that order has had time to reach its undo, so the aimed error is not replaced before it fires."""

    def is_aimed(f: Disruption) -> bool:
        return f.mode == "error" and f.activity in UNDOS and f.order_id is not None

    out = list(faults)
    for aimed in filter(is_aimed, faults):
        assert aimed.order_id is not None
        until = min(orders - 1, index[aimed.order_id] + 20)
        out = [
            replace(f, at=until) if not is_aimed(f) and f.activity == aimed.activity and aimed.at <= f.at < until else f
            for f in out
        ]
    return out


def _fault(rng: random.Random, planned: list[PlannedOrder], at: int, activity: str, mode: str) -> Disruption:
    count = {
        "error": rng.randint(1, 2),
        "transient": rng.randint(1, MAX_TRANSIENT),
        "delay": rng.randint(1, 5),
        "crash_before": 1,
        "crash_after": 1,
    }[mode]
    delay_ms = rng.randint(100, 3000) if mode == "delay" else None
    order_id = None
    if mode == "error" and activity in UNDOS:
        # Half of them aimed at an order soon to come that will run this undo by itself (it must end
        # COMPENSATION_FAILED naming it); the other half hit whichever orders unwind next.
        soon = [o for o in planned[at + 1 : at + 40] if activity in UNWINDS.get(o.kind, ())]
        if soon and rng.random() < 0.5:
            order_id, count = rng.choice(soon).order_id, 1
    elif rng.random() < 0.2:
        order_id = planned[min(len(planned) - 1, at + rng.randint(1, 20))].order_id
    return Disruption(
        at,
        "fault",
        app=ACTIVITIES[activity],
        activity=activity,
        mode=mode,
        count=count,
        delay_ms=delay_ms,
        order_id=order_id,
    )
