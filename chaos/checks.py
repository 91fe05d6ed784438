"""The invariants a chaos run must leave standing, checked through the REST APIs only (the apps' own, and the
engine's workflow API for the saga's output): every order ended, and ended clean or, where an undo was made to
fail on purpose, COMPENSATION_FAILED naming it; money, stock, shipments and notifications agree with how it ended.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections import Counter
from collections.abc import Coroutine
from dataclasses import dataclass, field
from typing import Any, TypeVar

import httpx

from common.contracts import REVIEW, RISK_REVIEW
from orchestrator.domain import COMPENSATION_FAILED, COMPLETED, TERMINAL
from orchestrator.sweep import STOPPED_AS_CONCLUDED

from .schedule import UNDOS, Disruption, PlannedOrder

T = TypeVar("T")
BUSINESS_FAILURES = ("declined", "out_of_stock", "undeliverable", "review_rejected", "review_timeout")


@dataclass(frozen=True)
class Violation:
    order_id: str  # "-" for a run-wide invariant
    invariant: str
    expected: str
    found: str


@dataclass
class Findings:
    violations: list[Violation] = field(default_factory=list)
    endings: Counter[str] = field(default_factory=Counter)  # status -> orders
    by_kind: dict[str, Counter[str]] = field(default_factory=dict)  # workload kind -> status -> orders
    causes: Counter[str] = field(default_factory=Counter)  # "STATUS at step" -> orders that did not complete
    aimed_undo_errors: Counter[str] = field(default_factory=Counter)  # "ended COMPENSATION_FAILED" / "did not fire"
    stale_rows: int = 0  # stored status behind the saga because the saga's own record of it failed (it says so)
    # orders whose saga workflow failed outside the saga (WORKFLOW_FAILED) and an operator's resolve then ended:
    # why the workflow failed, as the order says it (the engine's reason) -> orders
    operator_resolved: Counter[str] = field(default_factory=Counter)
    # orders the saga concluded (its record of the ending stored) whose workflow the engine failed after: status ->
    # orders (daprd 1.18.2's false tamper detections; the stored ending stands and the effects are held to it)
    failed_after_concluding: Counter[str] = field(default_factory=Counter)
    # orders the saga concluded whose last step's result daprd lost, so that the order-api's stall rule stopped the
    # workflow and kept the saga's own ending (orchestrator.sweep): status -> orders; held to that ending likewise
    stopped_after_concluding: Counter[str] = field(default_factory=Counter)

    def add(self, order_id: str, invariant: str, expected: Any, found: Any) -> None:
        self.violations.append(Violation(order_id, invariant, str(expected), str(found)))


@dataclass
class Urls:
    apps: dict[str, str]
    workflow_api: str  # the order-api's daprd (or the sidecar's listener for it)
    api_token: str


async def statuses(urls: Urls, order_ids: list[str]) -> dict[str, str | None]:
    """Each order's status as ``GET /orders/{id}`` says it (None: no such order)."""
    async with _client() as client:
        return dict(
            zip(
                order_ids,
                await _gather([_status(client, urls.apps["order-api"], oid) for oid in order_ids]),
                strict=True,
            )
        )


async def products(urls: Urls) -> dict[str, int]:
    async with _client() as client:
        return {p["sku"]: p["available"] for p in await _get(client, f"{urls.apps['inventory']}/products")}


async def check(
    urls: Urls,
    orders: list[PlannedOrder],
    disruptions: list[Disruption],
    initial_stock: dict[str, int],
    refused: list[str],
    survivors: list[str],
) -> Findings:
    found = Findings()
    for line in refused:
        order_id, _, what = line.partition(": ")
        found.add(order_id, "the system answers every valid request", "2xx (or 409 to a late cancel)", what)
    for survivor in survivors:
        found.add("-", "a killed runner leaves no process running", "every process dies with its runner", survivor)
    armed = _undo_errors(disruptions)
    async with _client() as client:
        listing = await _listing(client, urls.apps["order-api"])
        facts = await _gather([_facts(client, urls, o.order_id) for o in orders])
        stock_after = {p["sku"]: p["available"] for p in await _get(client, f"{urls.apps['inventory']}/products")}
    reserved: Counter[str] = Counter()
    for order, fact in zip(orders, facts, strict=True):
        _check_order(found, order, fact, listing, armed)
        if (fact["reservation"] or {}).get("status") == "RESERVED":
            for item in fact["reservation"]["items"]:
                reserved[item["sku"]] += item["quantity"]
    for extra in sorted(set(listing) - {o.order_id for o in orders}):
        found.add(extra, "only the run's orders exist", "no such order", f"listed as {listing[extra]}")
    for sku, before in sorted(initial_stock.items()):
        if before - reserved[sku] != stock_after.get(sku):
            found.add(
                "-",
                f"stock of {sku} is conserved",
                f"{before} initial - {reserved[sku]} sold = {before - reserved[sku]} available",
                f"{stock_after.get(sku)} available",
            )
    return found


def _check_order(
    found: Findings,
    order: PlannedOrder,
    fact: dict[str, Any],
    listing: dict[str, str],
    armed: dict[str, set[str | None]],
) -> None:
    oid, view = order.order_id, fact["order"]
    if view is None:
        found.add(oid, "every submitted order exists", "GET /orders/{id} 200", "404: lost")
        return
    status = view["status"]
    found.endings[status] += 1
    found.by_kind.setdefault(order.kind, Counter())[status] += 1
    if status not in TERMINAL:
        found.add(oid, "every order ends", "a terminal status", status)
        return
    if status != COMPLETED:
        found.causes[f"{status} at {(view['failure'] or {}).get('step')}"] += 1
    output = fact["output"]
    if view.get("resolution") is not None:
        # No saga output to hold it against: its workflow failed; the operator's resolution concluded it.
        found.operator_resolved[_why_it_failed(view)] += 1
        if view["resolution"].get("status") != status or listing.get(oid) != status:
            found.add(
                oid,
                "a resolved order ends as its resolution says, in the order and in the list",
                view["resolution"].get("status"),
                f"GET /orders/{{id}} {status}, GET /orders {listing.get(oid)}",
            )
    elif output in ("workflow FAILED", "workflow UNREADABLE"):
        found.failed_after_concluding[status] += 1  # terminal: only the saga's own record or output makes it so
    elif output == "workflow TERMINATED" and _stopped_as_concluded(view):
        found.stopped_after_concluding[status] += 1
    elif not isinstance(output, dict):
        found.add(oid, "the order-api's status equals the saga's output", status, f"no saga output: {output}")
    else:
        if output.get("status") != status:
            found.add(
                oid,
                "the order-api's status equals the saga's output",
                output.get("status"),
                f"GET /orders/{{id}} says {status}",
            )
        warned = any("record_order_status failed" in w for w in output.get("warnings") or [])
        if listing.get(oid) != output.get("status"):
            if warned:
                found.stale_rows += 1
            else:
                found.add(
                    oid,
                    "the order-api's stored status equals the saga's output",
                    output.get("status"),
                    f"GET /orders lists {listing.get(oid)}",
                )
    if order.kind in BUSINESS_FAILURES and status == COMPLETED:
        found.add(oid, f"a {order.kind} order never completes", "not COMPLETED", status)
    reviewed = [s for s in view["steps"] if s["name"] == RISK_REVIEW and s.get("decision") == REVIEW]
    approval = (view.get("approval") or {}).get("state")
    if reviewed and status == COMPLETED and approval != "approved":
        found.add(oid, "an order left to a person completes only once approved", "approval approved", approval)

    failed = [c for c in view["compensations"] if c["outcome"] == "failed"]
    for undo in failed:
        injected = f"injected fault: {undo['name']} fails permanently" in (undo.get("reason") or "")
        if not injected or not ({None, oid} & armed.get(undo["name"], set())):
            found.add(
                oid,
                "an undo fails only by an injected permanent error",
                "undone or nothing_to_undo",
                f"{undo['name']} failed: {undo.get('reason')}",
            )
    if failed and (status != COMPENSATION_FAILED or (view["failure"] or {}).get("step") != failed[0]["name"]):
        found.add(
            oid,
            "a failed undo ends its order COMPENSATION_FAILED naming it",
            f"COMPENSATION_FAILED naming {failed[0]['name']}",
            f"{status} {view['failure']}",
        )
    if status == COMPENSATION_FAILED and not failed:
        found.add(oid, "COMPENSATION_FAILED only when an undo failed", "a failed undo", view["compensations"])
    if oid in armed.get("aimed", set()):
        found.aimed_undo_errors[
            "ended COMPENSATION_FAILED"
            if status == COMPENSATION_FAILED
            else "did not fire (replaced, or the order unwound first)"
        ] += 1

    _check_effects(found, oid, status, view, fact, {u["name"] for u in failed})


def _check_effects(
    found: Findings, oid: str, status: str, view: dict[str, Any], fact: dict[str, Any], left: set[str]
) -> None:
    payment = fact["payment"] or {"charged_cents": 0, "refunded_cents": 0, "entries": []}
    charges = [e for e in payment["entries"] if e["kind"] == "charge"]
    if len(charges) > 1:
        found.add(oid, "no order is charged twice", "at most one charge", f"{len(charges)} charges: {charges}")
    net = payment["charged_cents"] - payment["refunded_cents"]
    reservation = (fact["reservation"] or {}).get("status")
    shipment = (fact["shipment"] or {}).get("status")
    if status == COMPLETED:
        if net != view["total_cents"]:
            found.add(oid, "a COMPLETED order is charged its total", f"net {view['total_cents']}", f"net {net}")
        if reservation != "RESERVED":
            found.add(oid, "a COMPLETED order holds its reservation", "RESERVED", reservation)
        if shipment != "SCHEDULED":
            found.add(oid, "a COMPLETED order is shipped", "SCHEDULED", shipment)
    else:
        if net != 0 and not ("refund" in left and net == (view["total_cents"] or 0)):
            found.add(oid, f"a {status} order is charged nothing", "net 0", f"net {net} ({payment['entries']})")
        if reservation == "RESERVED" and "release_inventory" not in left:
            found.add(oid, f"a {status} order holds no stock", "no reservation or RELEASED", reservation)
        if shipment == "SCHEDULED" and "cancel_shipment" not in left:
            found.add(oid, f"a {status} order is not shipped", "no shipment or CANCELLED", shipment)
    kinds = Counter(n["kind"] for n in fact["notifications"])
    for kind, n in kinds.items():
        if n > 1:
            found.add(oid, "at most one notification of each kind", f"one {kind}", f"{n} {kind}")


def _stopped_as_concluded(view: dict[str, Any]) -> bool:
    """Whether the order-api's stall rule stopped this order's saga after it had concluded, keeping its ending: the
    sweep says so in the order's warnings (``STOPPED_AS_CONCLUDED``)."""
    return any(STOPPED_AS_CONCLUDED in warning for warning in view.get("warnings") or [])


def _why_it_failed(view: dict[str, Any]) -> str:
    """The engine's reason a saga workflow failed, as the order gives it, without the instance's own details."""
    reason = str((view.get("failure") or {}).get("reason") or "?").removeprefix("the workflow failed: ")
    return reason.split(" for '")[0]


async def resolve(urls: Urls, order_id: str) -> str:
    """Ask the order-api to resolve a WORKFLOW_FAILED order, as an operator would (``POST /orders/{id}/resolve``);
    why its workflow failed."""
    async with _client() as client:
        view = await _get(client, f"{urls.apps['order-api']}/orders/{order_id}")
        for _ in range(60):
            try:
                answer = await client.post(f"{urls.apps['order-api']}/orders/{order_id}/resolve")
                if answer.status_code in (202, 409):  # 409: it has been resolved, or is being
                    break
            except httpx.TransportError:
                pass
            await asyncio.sleep(1)
    return _why_it_failed(view)


def _undo_errors(disruptions: list[Disruption]) -> dict[str, set[str | None]]:
    """undo -> the orders an error was armed for (None: any order); "aimed" -> the orders aimed at."""
    armed: dict[str, set[str | None]] = {"aimed": set()}
    for d in disruptions:
        if d.kind == "fault" and d.mode == "error" and d.activity in UNDOS:
            armed.setdefault(d.activity, set()).add(d.order_id)
            if d.order_id is not None:
                armed["aimed"].add(d.order_id)
    return armed


async def _facts(client: httpx.AsyncClient, urls: Urls, oid: str) -> dict[str, Any]:
    apps = urls.apps
    order, workflow, payment, reservation, shipment, notifications = await asyncio.gather(
        _get(client, f"{apps['order-api']}/orders/{oid}", missing=True),
        _workflow(client, f"{urls.workflow_api}/v1.0/workflows/dapr/{oid}", urls.api_token),
        _get(client, f"{apps['payment']}/payments/{oid}", missing=True),
        _get(client, f"{apps['inventory']}/reservations/{oid}", missing=True),
        _get(client, f"{apps['shipping']}/shipments/{oid}", missing=True),
        _get(client, f"{apps['notification']}/notifications", params={"order_id": oid}),
    )
    return {
        "order": order,
        "output": _output(workflow),
        "payment": payment,
        "reservation": reservation,
        "shipment": shipment,
        "notifications": notifications,
    }


async def _workflow(client: httpx.AsyncClient, url: str, token: str) -> dict[str, Any] | None:
    """The engine's view of a workflow; one whose history daprd refuses to read (its signatures do not verify: a
    500 that no retry changes, seen on the cluster after a false tamper detection) as runtime status UNREADABLE."""
    response = None
    for attempt in range(3):
        with contextlib.suppress(httpx.TransportError):
            response = await client.get(url, headers={"dapr-api-token": token})
            if response.status_code == 500 and "signature verification failed" in response.text:
                return {"runtimeStatus": "UNREADABLE", "reason": response.text[:300]}
            break
        await asyncio.sleep(0.5 * (attempt + 1))
    result: dict[str, Any] | None = await _get(client, url, missing=True, headers={"dapr-api-token": token})
    return result


def _output(workflow: dict[str, Any] | None) -> dict[str, Any] | str:
    """The saga's output from the engine's workflow API, or why there is none."""
    if workflow is None:
        return "the engine knows no such workflow"
    raw = (workflow.get("properties") or {}).get("dapr.workflow.output")
    if workflow.get("runtimeStatus") != "COMPLETED" or raw is None:
        return f"workflow {workflow.get('runtimeStatus')}"
    value = json.loads(raw)
    output: dict[str, Any] | str = json.loads(value) if isinstance(value, str) else value
    return output


async def _listing(client: httpx.AsyncClient, order_api: str) -> dict[str, str]:
    """Every order as ``GET /orders`` lists it (the stored status), page by page."""
    out: dict[str, str] = {}
    cursor = None
    while True:
        page = await _get(
            client, f"{order_api}/orders", params={"limit": 100, **({"cursor": cursor} if cursor else {})}
        )
        out.update({o["order_id"]: o["status"] for o in page["items"]})
        cursor = page["next_cursor"]
        if not cursor:
            return out


async def _status(client: httpx.AsyncClient, order_api: str, oid: str) -> str | None:
    view = await _get(client, f"{order_api}/orders/{oid}", missing=True)
    return None if view is None else view["status"]


async def _get(client: httpx.AsyncClient, url: str, missing: bool = False, **kwargs: Any) -> Any:
    """GET ``url`` as JSON, repeated while the system does not answer; None for a 404 when ``missing``."""
    for attempt in range(120):
        try:
            response = await client.get(url, **kwargs)
            if response.status_code == 404 and missing:
                return None
            if response.status_code < 500:
                response.raise_for_status()
                return response.json()
        except httpx.TransportError:
            pass
        await asyncio.sleep(min(2.0, 0.2 * (attempt + 1)))
    raise RuntimeError(f"GET {url}: no answer after many tries")


async def _gather(calls: list[Coroutine[Any, Any, T]]) -> list[T]:
    """Await ``calls``, 16 at a time."""
    limit = asyncio.Semaphore(16)

    async def bounded(call: Coroutine[Any, Any, T]) -> T:
        async with limit:
            return await call

    return await asyncio.gather(*(bounded(c) for c in calls))


def _client() -> httpx.AsyncClient:
    return httpx.AsyncClient(timeout=30, limits=httpx.Limits(max_connections=64))
