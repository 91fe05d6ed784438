"""The chaos workload's lane against a stand-in order-api (an HTTP server on loopback that answers with the statuses
a test sets): an order whose workflow fails outside the saga while the lane waits for it to await approval is the
case real daprd makes only by chance (a false tamper detection), and the lane must give it up, not poll it forever."""

from __future__ import annotations

import asyncio
import http.server
import json
import threading
import time
from collections.abc import Iterator

import httpx
import pytest

from chaos.schedule import PlannedOrder
from chaos.workload import Progress, _one
from devtools.ports import free_port

ORDER = PlannedOrder(
    index=1, order_id="chaos-9-00001", kind="review_approved", body={"order_id": "chaos-9-00001"}, decision="approve"
)


@pytest.fixture
def order_api() -> Iterator[tuple[str, dict[str, str], list[str]]]:
    """A stand-in order-api: every POST /orders answers ``state["post"]``, GET /orders/{id} ``state["get"]``; the
    requests it saw, in order."""
    state = {"post": "RUNNING", "get": "RUNNING"}
    seen: list[str] = []

    class OrderApi(http.server.BaseHTTPRequestHandler):
        def _answer(self, status: str) -> None:
            seen.append(f"{self.command} {self.path}")
            body = json.dumps({"order_id": ORDER.order_id, "status": status}).encode()
            self.send_response(200 if self.command == "GET" else 202)
            self.send_header("content-type", "application/json")
            self.send_header("content-length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def do_GET(self) -> None:
            self._answer(state["get"])

        def do_POST(self) -> None:
            self.rfile.read(int(self.headers.get("content-length", 0)))
            self._answer(state["post"])

        def log_message(self, *args: object) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", free_port()), OrderApi)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}", state, seen
    finally:
        server.shutdown()


async def _lane(url: str, timeout: float) -> tuple[Progress, float]:
    progress = Progress(1)
    t0 = time.monotonic()
    async with httpx.AsyncClient(base_url=url, timeout=10) as client:
        await asyncio.wait_for(_one(client, ORDER, progress, timeout), timeout + 10)
    return progress, time.monotonic() - t0


async def test_an_order_whose_workflow_fails_before_it_awaits_approval_is_given_up_at_once(order_api) -> None:
    url, state, seen = order_api
    state["get"] = state["post"] = "WORKFLOW_FAILED"
    progress, took = await _lane(url, timeout=60)
    assert took < 5  # not the lane's 60 s deadline: nothing more happens to it by itself
    assert progress.finished == 1 and progress.ended == {}  # the settle phase resolves it, as an operator would
    assert not any(s.endswith("/approve") for s in seen)  # no decision sent to an order that cannot take one


async def test_an_order_that_never_awaits_approval_is_given_up_at_the_lanes_deadline(order_api) -> None:
    url, _, seen = order_api  # RUNNING, whatever it is asked
    progress = Progress(1)
    t0 = time.monotonic()
    async with httpx.AsyncClient(base_url=url, timeout=10) as client:
        lane = asyncio.create_task(_one(client, ORDER, progress, 1.5))
        await asyncio.sleep(0.7)
        # What chaos's progress line names when a run hangs at its end.
        assert progress.going == {ORDER.order_id: "it to await approval"}
        await asyncio.wait_for(lane, 10)
    assert 1.5 <= time.monotonic() - t0 < 8
    assert progress.finished == 1 and progress.ended == {} and progress.going == {}
    assert f"GET /orders/{ORDER.order_id}" in seen


async def test_an_order_that_awaits_approval_is_decided_then_followed_to_its_end(order_api) -> None:
    url, state, seen = order_api
    state["get"] = "AWAITING_APPROVAL"
    state["post"] = "COMPLETED"  # the decision's answer, and the order's when asked again
    progress, _ = await _lane(url, timeout=60)
    assert f"POST /orders/{ORDER.order_id}/approve" in seen
    assert progress.ended == {ORDER.order_id: "COMPLETED"}
