"""The ``shop`` command line. Talks to the apps' REST APIs only; where they are comes from ``SHOP_URL`` (the
order-api, default http://127.0.0.1:8000) and ``SHOP_<APP>_URL`` for payment, inventory, shipping and
notification (defaults: ports 8001-8004, as ``make run`` and ``make run-dapr`` start them)."""

from __future__ import annotations

import argparse
import os
import sys
import time
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any, TextIO

import httpx

from common.contracts import APP_IDS
from common.scenarios import SCENARIOS, Fault, fault_body, new_order_id, order_body

TERMINAL = {"COMPLETED", "COMPENSATED", "REJECTED", "CANCELLED", "COMPENSATION_FAILED"}
AWAITING_APPROVAL = "AWAITING_APPROVAL"
WORKFLOW_FAILED = "WORKFLOW_FAILED"  # not terminal: an operator resolves it (shop resolve)
DEFAULT_PORTS = {"order-api": 8000, "payment": 8001, "inventory": 8002, "shipping": 8003, "notification": 8004}


class ShopError(Exception):
    """Something the user can act on; printed as one line, exit 1."""


def url_of(app: str, env: dict[str, str] | os._Environ[str] = os.environ) -> str:
    name = "SHOP_URL" if app == "order-api" else f"SHOP_{app.upper()}_URL"
    return env.get(name, f"http://127.0.0.1:{DEFAULT_PORTS[app]}").rstrip("/")


def main(argv: Sequence[str] | None = None, out: TextIO = sys.stdout) -> int:
    args = _parser().parse_args(argv)
    try:
        return int(args.run(args, out) or 0)
    except ShopError as err:
        print(f"shop: {err}", file=sys.stderr)
        return 1
    except httpx.ConnectError as err:
        print(
            f"shop: cannot reach {err.request.url.host}:{err.request.url.port} ({err}); is the system running "
            "(make run)?",
            file=sys.stderr,
        )
        return 1


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="shop", description=__doc__)
    sub = p.add_subparsers(
        dest="command", required=True, metavar="{submit,watch,list,cancel,approve,reject,resolve,faults,scenarios}"
    )
    submit = sub.add_parser(
        "submit",
        help="submit an order, plain or as a demo scenario",
        description="Submit an order. A --scenario arms the faults it needs for this order only, "
        "waits for the order to finish, and clears them again.",
    )
    submit.add_argument("--scenario", choices=sorted(SCENARIOS), default="happy", help="which demo (default: happy)")
    submit.add_argument("--order-id", help="the order's ID (default: a new one)")
    submit.add_argument("--watch", action="store_true", help="print each step and undo as it happens")
    submit.set_defaults(run=_submit)
    watch = sub.add_parser("watch", help="follow one order until it finishes, step by step")
    watch.add_argument("order_id")
    watch.add_argument("--timeout", type=float, default=120.0, help="give up after this many seconds (120)")
    watch.set_defaults(run=_watch)
    listing = sub.add_parser("list", help="the orders, newest first")
    listing.add_argument("--status", help="only orders in this status")
    listing.add_argument("--limit", type=int, default=20, help="how many (1-100, default 20)")
    listing.set_defaults(run=_list)
    cancel = sub.add_parser("cancel", help="ask a running order to stop and undo what it did")
    cancel.add_argument("order_id")
    cancel.add_argument("--reason", help="why (kept with the order)")
    cancel.set_defaults(run=_cancel)
    for verb, what in (("approve", "let it go on to the charge"), ("reject", "release what it holds, end it REJECTED")):
        decide = sub.add_parser(verb, help=f"decide on an order awaiting approval: {what}")
        decide.add_argument("order_id")
        decide.add_argument("--reviewer", help="who decides (kept with the order)")
        decide.add_argument("--note", help="why (kept with the order)")
        decide.set_defaults(run=_decide, verb=verb)
    resolve = sub.add_parser(
        "resolve",
        help="for an operator: unwind an order whose workflow failed (WORKFLOW_FAILED)",
        description="An order whose saga workflow failed outside the saga (a tampered history, a non-determinism "
        "error, a terminate) stays WORKFLOW_FAILED until an operator resolves it: every undo runs, each idempotent, "
        "and the order ends COMPENSATED (or COMPENSATION_FAILED). Prints the undos as they run.",
    )
    resolve.add_argument("order_id")
    resolve.add_argument("--timeout", type=float, default=120.0, help="stop following after this many seconds (120)")
    resolve.set_defaults(run=_resolve)
    faults = sub.add_parser(
        "faults",
        help="see (default), set or clear injected faults",
        description="Without a subcommand: the faults armed on every app.",
    )
    faults.set_defaults(run=_faults_list)
    fsub = faults.add_subparsers(dest="faults_command", metavar="{set,clear}")
    fset = fsub.add_parser("set", help="arm a fault on one activity of one app")
    fset.add_argument("app", choices=APP_IDS)
    fset.add_argument("activity", help="e.g. charge, ship, reserve_inventory")
    fset.add_argument("mode", choices=("error", "transient", "delay", "crash_before", "crash_after"))
    fset.add_argument("--count", type=int, help="how many times it fires")
    fset.add_argument("--delay-ms", type=int, help="for mode delay")
    fset.add_argument("--order-id", help="only for this order")
    fset.set_defaults(run=_faults_set)
    fclear = fsub.add_parser("clear", help="clear the faults of one app, or of all of them")
    fclear.add_argument("app", nargs="?", choices=APP_IDS)
    fclear.set_defaults(run=_faults_clear)
    scenarios = sub.add_parser("scenarios", help="the demo scenarios --scenario takes")
    scenarios.set_defaults(run=_scenarios)
    return p


# --- orders -------------------------------------------------------------------------------------------------


def _submit(args: argparse.Namespace, out: TextIO) -> int:
    scenario = SCENARIOS[args.scenario]
    order_id = args.order_id or new_order_id(scenario)
    with httpx.Client(timeout=60) as client:
        armed = [_arm(client, fault, order_id) for fault in scenario.faults]
        try:
            response = client.post(f"{url_of('order-api')}/orders", json=order_body(scenario, order_id))
            _check(response)
            print(f"submitted {order_id} ({scenario.name}: {scenario.summary})", file=out)
            if not (args.watch or armed or scenario.cancel_during or scenario.expect == AWAITING_APPROVAL):
                print(f"follow it with: shop watch {order_id}", file=out)
                return 0
            order = _follow(
                client,
                order_id,
                out,
                quiet=not args.watch,
                cancel_during=scenario.cancel_during,
                stop_at=scenario.expect if scenario.expect not in TERMINAL else None,
                past_deadline=True,
            )
        finally:
            for app, activity in armed:
                client.delete(f"{url_of(app)}/faults/{activity}")
    if order["status"] != scenario.expect:
        print(f"expected {scenario.expect}, got {order['status']}", file=out)
        return 1
    return 0


def _watch(args: argparse.Namespace, out: TextIO) -> int:
    with httpx.Client(timeout=60) as client:
        _follow(client, args.order_id, out, quiet=False, timeout=args.timeout)
    return 0


def _follow(
    client: httpx.Client,
    order_id: str,
    out: TextIO,
    *,
    quiet: bool,
    cancel_during: str | None = None,
    stop_at: str | None = None,
    timeout: float = 120.0,
    past_deadline: bool = False,
) -> dict[str, Any]:
    """Poll the order until it is terminal (or in status ``stop_at``); print each step and undo once, as it
    changes, and a wait for a person once, with its deadline; return the order. ``past_deadline``: while the order
    waits for a person, follow it until its deadline has passed, whatever ``timeout`` says."""
    seen: dict[str, str] = {}
    deadline = time.monotonic() + timeout
    cancelled = False
    tty = out.isatty()
    while True:
        response = client.get(f"{url_of('order-api')}/orders/{order_id}")
        _check(response)
        order: dict[str, Any] = response.json()
        undos = (order.get("resolution") or {}).get("compensations") or order["compensations"]
        for kind, entries in (("step", order["steps"]), ("undo", undos)):
            for entry in entries:
                key = f"{kind}:{entry['name']}"
                if seen.get(key) != entry["outcome"] and not (kind == "undo" and entry["outcome"] == "pending"):
                    seen[key] = entry["outcome"]
                    if not quiet:
                        print(_describe(kind, entry), file=out)
        if cancel_during and not cancelled and seen.get(f"step:{cancel_during}") == "running":
            _check(client.post(f"{url_of('order-api')}/orders/{order_id}/cancel", json={"reason": "shop scenario"}))
            cancelled = True
            print(f"cancel requested while {cancel_during} was running", file=out)
        if order["status"] == AWAITING_APPROVAL and "awaiting" not in seen:
            seen["awaiting"] = "shown"
            waiting = order.get("approval") or {}
            print(
                f"{order_id} AWAITING_APPROVAL until {waiting.get('deadline')} ({waiting.get('reason')}): "
                f"shop approve {order_id}, or shop reject {order_id}",
                file=out,
            )
            if stop_at == AWAITING_APPROVAL:
                return order
        approval = order.get("approval") or {}
        if past_deadline and approval.get("state") == "waiting":
            deadline = max(deadline, time.monotonic() + _seconds_until(approval.get("deadline")) + 60)
        if order["status"] == WORKFLOW_FAILED and not order.get("resolution"):
            failure = order.get("failure") or {}
            print(f"{order_id} WORKFLOW_FAILED: {failure.get('reason', 'the workflow failed')}", file=out)
            print(f"it needs an operator: shop resolve {order_id}", file=out)
            return order
        if order["status"] in TERMINAL:
            if tty:
                print("\r" + " " * 60 + "\r", end="", file=out)
            failure = order.get("failure")
            why = f": {failure['step']} {failure['reason']}" if failure else ""
            print(f"{order_id} {order['status']}{why} (total {order.get('total_cents')} cents)", file=out)
            return order
        if time.monotonic() > deadline:
            raise ShopError(f"{order_id} still {order['status']} after {timeout:.0f} s")
        if tty:  # a live line: how far the saga is
            done = sum(1 for s in order["steps"] if s["outcome"] != "running")
            print(f"\r{order_id} {order['status']}: {done} step(s) done ...", end="", file=out, flush=True)
        time.sleep(0.2)


def _describe(kind: str, entry: dict[str, Any]) -> str:
    line = f"  {'step' if kind == 'step' else 'undo'} {entry['name']:<18} {entry['outcome']}"
    if entry.get("app"):
        line += f" on {entry['app']}" + (" (child workflow)" if entry.get("kind") == "workflow" else "")
    if (entry.get("attempts") or 1) > 1:
        line += f" after {entry['attempts']} attempts"
    if entry.get("decision"):
        line += f": {entry['decision']}" + (f" ({entry['reason']})" if entry.get("reason") else "")
    elif entry.get("reason"):
        line += f": {entry['reason']}"
    if entry.get("outcome") == "waiting" and entry.get("deadline"):
        line += f" for a person, until {entry['deadline']}"
    return line


def _seconds_until(iso: str | None) -> float:
    if not iso:
        return 0.0
    return (datetime.fromisoformat(iso) - datetime.now(UTC)).total_seconds()


def _list(args: argparse.Namespace, out: TextIO) -> int:
    params: dict[str, Any] = {"limit": args.limit}
    if args.status:
        params["status"] = args.status
    response = httpx.get(f"{url_of('order-api')}/orders", params=params, timeout=60)
    _check(response)
    for order in response.json()["items"]:
        print(
            f"{order['order_id']:<40} {order['status']:<20} {order['total_cents'] or '-':>8} {order['created_at']}",
            file=out,
        )
    return 0


def _decide(args: argparse.Namespace, out: TextIO) -> int:
    body = {k: v for k, v in (("reviewer", args.reviewer), ("note", args.note)) if v}
    response = httpx.post(f"{url_of('order-api')}/orders/{args.order_id}/{args.verb}", json=body or None, timeout=60)
    _check(response)
    print(f"{args.verb} sent for {args.order_id}; follow it with: shop watch {args.order_id}", file=out)
    return 0


def _cancel(args: argparse.Namespace, out: TextIO) -> int:
    body = {"reason": args.reason} if args.reason else None
    response = httpx.post(f"{url_of('order-api')}/orders/{args.order_id}/cancel", json=body, timeout=60)
    _check(response)
    print(
        f"cancel requested for {args.order_id} (now {response.json()['status']}); follow it with: "
        f"shop watch {args.order_id}",
        file=out,
    )
    return 0


def _resolve(args: argparse.Namespace, out: TextIO) -> int:
    with httpx.Client(timeout=60) as client:
        response = client.post(f"{url_of('order-api')}/orders/{args.order_id}/resolve")
        _check(response)
        print(f"resolving {args.order_id}: every undo runs", file=out)
        order = _follow(client, args.order_id, out, quiet=False, timeout=args.timeout)
    return 0 if order["status"] in TERMINAL else 1


# --- faults -------------------------------------------------------------------------------------------------


def _arm(client: httpx.Client, fault: Fault, order_id: str) -> tuple[str, str]:
    _check(client.put(f"{url_of(fault.app)}/faults/{fault.activity}", json=fault_body(fault, order_id)))
    return fault.app, fault.activity


def _faults_list(args: argparse.Namespace, out: TextIO) -> int:
    for app in APP_IDS:
        response = httpx.get(f"{url_of(app)}/faults", timeout=30)
        if response.status_code == 404:
            print(f"{app}: fault endpoints are off (FAULTS_ENABLED is not true)", file=out)
            continue
        _check(response)
        faults = response.json()
        print(f"{app}: " + (", ".join(_fault_text(f) for f in faults) or "none"), file=out)
    return 0


def _fault_text(fault: dict[str, Any]) -> str:
    extra = [f"{k}={fault[k]}" for k in ("remaining", "delay_ms", "order_id") if fault.get(k) is not None]
    return f"{fault['activity']} {fault['mode']}" + (f" ({', '.join(extra)})" if extra else "")


def _faults_set(args: argparse.Namespace, out: TextIO) -> int:
    body: dict[str, Any] = {"mode": args.mode}
    for key, value in (("count", args.count), ("delay_ms", args.delay_ms), ("order_id", args.order_id)):
        if value is not None:
            body[key] = value
    response = httpx.put(f"{url_of(args.app)}/faults/{args.activity}", json=body, timeout=30)
    _check(response)
    print(f"{args.app}: {_fault_text(response.json())}", file=out)
    return 0


def _faults_clear(args: argparse.Namespace, out: TextIO) -> int:
    for app in [args.app] if args.app else APP_IDS:
        response = httpx.delete(f"{url_of(app)}/faults", timeout=30)
        if response.status_code != 404:
            _check(response)
        print(f"{app}: faults cleared", file=out)
    return 0


def _scenarios(args: argparse.Namespace, out: TextIO) -> int:
    for scenario in SCENARIOS.values():
        print(f"{scenario.name:<14} ends {scenario.expect:<12} {scenario.summary}", file=out)
    return 0


def _check(response: httpx.Response) -> None:
    if response.is_success:
        return
    try:
        detail = response.json().get("detail") or response.text
    except ValueError:
        detail = response.text
    raise ShopError(f"{response.request.method} {response.request.url.path}: {response.status_code} {detail}")
