"""End-to-end: the order-api redeployed under a running system, on both engines (a system of this module's own,
whose order-api runs ``tests.support.order_api_versions``: a test names the saga code, stops the process, and the
runner starts it again on that code).

- A saga in flight when the risk review is deployed finishes on the path it started on: an order taken by the
  saga as it was before (``saga_before_risk_review``) and finished by the current code is charged without a review,
  large as it is, because its history does not record the patch ``risk-review-before-charge``.
- The risk review's chain-of-custody check holds against a saga that lies: the current saga asking the review to
  approve a total other than the one validate_order priced is rejected, with that reason, by payment's own
  workflow reading the saga's history as the engine propagated it.
"""

from __future__ import annotations

import os
import signal
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from common.scenarios import LARGE
from devtools.launcher import ENGINES
from tests.e2e.conftest import System, lane_skip_reason, started_system
from tests.support.orders import new_id, order_body

TERMINAL = {"COMPLETED", "COMPENSATED", "REJECTED", "CANCELLED", "COMPENSATION_FAILED"}


class Deployable:
    """The running system and the order-api's code: ``deploy(name)`` stops the order-api and waits for the runner
    to start it again on the code named."""

    def __init__(self, system: System, code_file: Path) -> None:
        self.system, self.code_file = system, code_file

    @property
    def pid(self) -> int | None:
        pid = Path(f"{self.code_file}.pid")
        return int(pid.read_text()) if pid.exists() else None

    def deploy(self, code: str) -> None:
        old = self.pid
        self.code_file.write_text(code)
        assert old is not None
        os.kill(old, signal.SIGTERM)  # the order-api this test's runner started, as a deploy stops it
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            if self.pid not in (None, old) and self._answers():
                return
            time.sleep(0.2)
        raise AssertionError(f"the order-api did not come back on {code}:\n{self.system.log_tail()}")

    def _answers(self) -> bool:
        try:
            return httpx.get(self.system.urls["order-api"] + "/healthz", timeout=5).status_code == 200
        except httpx.HTTPError:
            return False


@pytest.fixture(scope="module", params=ENGINES)
def deployable(
    request: pytest.FixtureRequest, pg_server_url: str, tmp_path_factory: pytest.TempPathFactory, traces
) -> Iterator[Deployable]:
    engine = request.param
    if reason := lane_skip_reason(engine, request.config):
        pytest.skip(reason)
    tmp = tmp_path_factory.mktemp(f"e2e-versions-{engine}-{uuid.uuid4().hex[:6]}")
    code_file = tmp / "order-api-code"
    code_file.write_text("before-risk-review")
    command = ["python", "-m", "tests.support.order_api_versions", str(code_file)]
    with started_system(engine, pg_server_url, tmp, traces, commands={"order-api": command}) as system:
        yield Deployable(system, code_file)


def until(api: httpx.Client, order_id: str, done, timeout: float = 120) -> dict:
    deadline = time.monotonic() + timeout
    order: dict = {}
    while time.monotonic() < deadline:
        response = api.get(f"/orders/{order_id}")
        if response.status_code == 200:
            order = response.json()
            if done(order):
                return order
        time.sleep(0.2)
    raise AssertionError(f"order {order_id} not there after {timeout}s: {order}")


def test_an_order_taken_before_the_risk_review_was_deployed_finishes_on_its_old_path(deployable: Deployable):
    system = deployable.system
    order_id = new_id("oldpath")
    with system.client("payment") as pay:
        # Hold the saga in its charge while the order-api is redeployed.
        pay.put("/faults/charge", json={"mode": "delay", "delay_ms": 6000, "order_id": order_id}).raise_for_status()
    with system.client("order-api") as api:
        # Large: on the current code it would wait for a person.
        assert (
            api.post(
                "/orders", json=order_body(order_id, items=[{"sku": s, "quantity": q} for s, q in LARGE])
            ).status_code
            == 202
        )
        running = until(
            api,
            order_id,
            lambda o: {"charge": "running"}.items() <= {s["name"]: s["outcome"] for s in o["steps"]}.items(),
        )
        assert "risk_review" not in [s["name"] for s in running["steps"]]

        deployable.deploy("current")
        order = until(api, order_id, lambda o: o["status"] in TERMINAL)

        assert order["status"] == "COMPLETED", order
        assert [s["name"] for s in order["steps"]] == [
            "validate_order",
            "reserve_inventory",
            "charge",
            "ship",
            "notify",
        ]
        history = api.get(f"/orders/{order_id}/history").json()
        assert not [e for e in history if e["type"] == "ChildWorkflowInstanceCreated"]
        # The turns after the charge ran on the current code: the saga's own log line of the charge's outcome comes
        # after the current code's start in the log (the old process had stopped before it started).
        log = system.log_path.read_text(errors="replace")
        assert log.index("order-api saga code: current") < log.index(f"{order_id}: charge succeeded")
    with system.client("payment") as pay:
        assert pay.get(f"/payments/{order_id}").json()["charged_cents"] == order["total_cents"] == 55_000
        assert pay.get(f"/reviews/{order_id}").status_code == 404

    # An order taken by the current code takes the new path: a review, and a person to decide.
    with system.client("order-api") as api:
        fresh = new_id("newpath")
        api.post("/orders", json=order_body(fresh, items=[{"sku": s, "quantity": q} for s, q in LARGE]))
        assert (
            until(api, fresh, lambda o: o["status"] in {"AWAITING_APPROVAL", *TERMINAL})["status"]
            == "AWAITING_APPROVAL"
        )
        assert api.post(f"/orders/{fresh}/cancel").status_code == 202
        assert until(api, fresh, lambda o: o["status"] in TERMINAL)["status"] == "CANCELLED"


def test_a_saga_that_asks_the_risk_review_to_approve_another_total_is_rejected_by_its_custody_check(
    deployable: Deployable,
):
    system = deployable.system
    deployable.deploy("tampering")
    try:
        order_id = new_id("tamper")
        with system.client("order-api") as api:
            order = api.post("/orders?wait=true", json=order_body(order_id)).json()
        assert order["status"] == "REJECTED", order
        assert order["failure"] == {
            "step": "risk_review",
            "reason": "chain of custody broken: asked to approve 11.99, but validate_order priced the order at 12.00",
        }
        review = order["steps"][2]
        assert review["custody"]["ok"] is False and review["custody"]["checks"] == [
            "started by order_saga " + order_id + " on order-api"
        ]
        assert [(c["name"], c["outcome"]) for c in order["compensations"]] == [("release_inventory", "undone")]
        with system.client("payment") as pay:
            assert pay.get(f"/payments/{order_id}").status_code == 404
            assert pay.get(f"/reviews/{order_id}").json()["custody"]["ok"] is False
    finally:
        deployable.deploy("current")
    # The same order on honest code: the chain holds.
    with system.client("order-api") as api:
        honest = new_id("honest")
        order = api.post("/orders?wait=true", json=order_body(honest)).json()
    assert order["status"] == "COMPLETED" and order["steps"][2]["custody"]["ok"] is True, order
