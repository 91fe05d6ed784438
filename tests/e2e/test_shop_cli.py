"""The ``shop`` command line against the running system, as a user runs it (``python -m shop``, REST APIs only).
It does not depend on the engine, so it runs in the sidecar lane."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from tests.support import REPO
from tests.support.orders import new_id, terminated_at_ship


@pytest.fixture
def shop(system):
    if system.engine != "sidecar":
        pytest.skip("the command line does not depend on the engine: tested in the sidecar lane")
    env = {"PATH": str(Path(sys.executable).parent), "SHOP_URL": system.urls["order-api"]}
    env |= {f"SHOP_{app.upper()}_URL": system.urls[app] for app in ("payment", "inventory", "shipping", "notification")}

    def run(*args: str) -> subprocess.CompletedProcess:
        return subprocess.run(
            [sys.executable, "-m", "shop", *args], cwd=REPO, env=env, capture_output=True, text=True, timeout=180
        )

    return run


def test_a_declined_card_scenario_prints_each_step_and_each_undo_as_it_happens(shop):
    done = shop("submit", "--scenario", "declined", "--watch")
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert any("step charge" in line and "refused on payment: card declined" in line for line in lines)
    undos = [line.split()[1] for line in lines if line.strip().startswith("undo")]
    assert undos == ["refund", "release_inventory"]
    assert lines[-1].split()[1].rstrip(":") == "COMPENSATED"


def test_the_cancel_scenario_cancels_while_the_charge_runs_and_clears_its_fault(shop):
    done = shop("submit", "--scenario", "cancel", "--watch")
    assert done.returncode == 0, done.stdout + done.stderr
    assert "cancel requested while charge was running" in done.stdout
    assert done.stdout.splitlines()[-1].split()[1].rstrip(":") == "CANCELLED"
    assert "payment: none" in shop("faults").stdout  # the delay it armed is gone


def test_faults_are_set_listed_and_cleared(shop):
    assert shop("faults", "set", "shipping", "ship", "delay", "--delay-ms", "10", "--count", "2").returncode == 0
    assert "shipping: ship delay (remaining=2, delay_ms=10)" in shop("faults").stdout
    assert shop("faults", "clear", "shipping").returncode == 0
    assert "shipping: none" in shop("faults").stdout


def test_a_plain_submit_returns_at_once_and_the_order_is_listed(shop):
    done = shop("submit", "--order-id", "cli-plain-1")
    assert done.returncode == 0 and "shop watch cli-plain-1" in done.stdout
    assert shop("watch", "cli-plain-1").stdout.splitlines()[-1].split()[1] == "COMPLETED"
    assert "cli-plain-1" in shop("list", "--status", "COMPLETED").stdout


def test_the_review_scenario_stops_awaiting_approval_and_shop_approve_lets_it_complete(shop):
    done = shop("submit", "--scenario", "review", "--watch")
    assert done.returncode == 0, done.stdout + done.stderr
    order_id = done.stdout.split()[1]
    lines = done.stdout.splitlines()
    assert any("step risk_review" in line and "on payment (child workflow): review" in line for line in lines)
    assert any("step approval" in line and "waiting for a person, until" in line for line in lines)
    assert f"shop approve {order_id}" in lines[-1] and "AWAITING_APPROVAL until" in lines[-1]

    approved = shop("approve", order_id, "--reviewer", "grace")
    assert approved.returncode == 0 and f"approve sent for {order_id}" in approved.stdout
    watched = shop("watch", order_id).stdout.splitlines()
    assert watched[-1].split()[1] == "COMPLETED"
    assert any("step approval" in line and "succeeded" in line for line in watched)
    again = shop("reject", order_id)
    assert again.returncode == 1 and "409" in again.stderr and "not awaiting approval" in again.stderr


def test_shop_reject_ends_an_order_awaiting_approval_rejected(shop):
    done = shop("submit", "--scenario", "review")
    assert done.returncode == 0, done.stdout + done.stderr
    order_id = done.stdout.split()[1]

    assert shop("reject", order_id, "--note", "not today").returncode == 0
    last = shop("watch", order_id).stdout.splitlines()[-1]
    assert last.split()[1] == "REJECTED:" and "approval rejected by a person: not today" in last


def test_mistakes_are_one_line_and_exit_1(shop):
    unknown = shop("cancel", "no-such-order")
    assert (
        unknown.returncode == 1 and unknown.stderr.count("\n") == 1 and "404 no order 'no-such-order'" in unknown.stderr
    )
    wrong = shop("faults", "set", "payment", "ship", "error")
    assert wrong.returncode == 1 and "404 no activity 'ship' here" in wrong.stderr


def test_every_command_has_help():
    for command in (
        [],
        ["submit"],
        ["watch"],
        ["list"],
        ["cancel"],
        ["approve"],
        ["reject"],
        ["faults"],
        ["faults", "set"],
        ["faults", "clear"],
        ["scenarios"],
    ):
        done = subprocess.run(
            [sys.executable, "-m", "shop", *command, "--help"], cwd=REPO, capture_output=True, text=True
        )
        assert done.returncode == 0 and done.stdout.startswith("usage: shop"), command


def test_an_unreachable_system_says_to_start_it():
    done = subprocess.run(
        [sys.executable, "-m", "shop", "list"],
        cwd=REPO,
        capture_output=True,
        text=True,
        env={"SHOP_URL": "http://127.0.0.1:9"},
    )
    assert done.returncode == 1 and "is the system running (make run)?" in done.stderr


def test_watch_says_a_workflow_failed_order_needs_an_operator_and_resolve_prints_each_undo(system, shop):
    order_id = new_id("cli-failed")
    terminated_at_ship(system, order_id)

    watched = shop("watch", order_id)
    assert watched.returncode == 0, watched.stderr
    assert f"it needs an operator: shop resolve {order_id}" in watched.stdout
    resolved = shop("resolve", order_id)
    assert resolved.returncode == 0, resolved.stdout + resolved.stderr
    undos = [line.split()[1] for line in resolved.stdout.splitlines() if line.strip().startswith("undo")]
    assert undos == ["cancel_shipment", "refund", "release_inventory"]
    assert resolved.stdout.splitlines()[-1].split()[1].rstrip(":") == "COMPENSATED"
    again = shop("resolve", order_id)
    assert again.returncode == 1 and "409" in again.stderr
