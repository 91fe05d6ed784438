"""``python -m chaos`` as ``make chaos`` runs it, smaller: about 200 orders under injected faults, app and runner
SIGKILLs and a PostgreSQL restart, on each engine lane; on real daprd (mTLS, the access policies, signed history,
the watchdog) also SIGKILLs of single daprds and of placement, the scheduler and sentry. Any violation fails the
test, with the report."""

from __future__ import annotations

import signal
import subprocess
import sys

import pytest

from tests.support import REPO

BUDGET_S = 840


@pytest.mark.timeout(BUDGET_S + 180)
def test_two_hundred_orders_under_chaos_leave_no_violation(engine: str) -> None:
    # Every kind of disruption on both lanes. On real daprd a PostgreSQL restart can leave a daprd without its
    # workflow actor types until it is restarted (README, Chaos): the watchdog of realdapr restarts it.
    _, report = run_chaos(["--orders", "200", "--seed", "7", "--engine", engine], BUDGET_S)
    print(report)


def run_chaos(args: list[str], budget_s: int) -> tuple[str, str]:
    """``python -m chaos ARGS``: its output and its report; fails the test on a violation, an error or the budget."""
    run = subprocess.Popen(
        [sys.executable, "-m", "chaos", *args],
        cwd=REPO,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )
    try:
        out, err = run.communicate(timeout=budget_s)
    except subprocess.TimeoutExpired:
        # SIGTERM ends a chaos run as Ctrl-C does: it stops its system and PostgreSQL (a SIGKILL would leave them).
        run.send_signal(signal.SIGTERM)
        out, err = run.communicate(timeout=150)
        pytest.fail(f"chaos did not finish within {budget_s} s\n{out[-6000:]}\n{err[-3000:]}")
    report = out[out.find("chaos run:") :] if "chaos run:" in out else out[-6000:]
    assert run.returncode == 0, f"exit {run.returncode}\n{report}\n{err[-3000:]}"
    return out, report


CLUSTER_BUDGET_S = 420


@pytest.mark.timeout(CLUSTER_BUDGET_S + 180)
def test_a_cluster_under_chaos_leaves_no_violation() -> None:
    """``make chaos`` on two nodes (``--topology cluster``): sixty orders, four at a time so that the node crash,
    the node pause and the partition (and the daprd, app, control-plane and PostgreSQL blows) meet orders in
    flight; the same invariants, which also say that no activity took effect twice across replicas (at most one
    charge per order, stock conserved)."""
    from tests.support.cluster import require_cluster

    require_cluster()
    args = ["--topology", "cluster", "--orders", "60", "--concurrency", "4", "--seed", "4", "--settle-timeout", "120"]
    out, report = run_chaos(args, CLUSTER_BUDGET_S)
    for blow in ("node crash", "node pause", "partition"):
        assert f"{blow}:" in out, f"no {blow} was carried out\n{out[-4000:]}"
    print(report)
