"""The watchdog of ``python -m realdapr run``, as a Kubernetes liveness probe: a daprd that stops answering is
restarted with the reason logged, and one whose app's worker is connected while its workflow actor type is not
hosted (the wedge of dapr/dapr 9070) is restarted too.

The first on the real binary (a SIGSTOPped daprd); the second cannot be produced on demand on a healthy daprd
1.18.2, so a stand-in HTTP server answers as such a daprd would (the recorded metadata of a real one, with the
actor types the wedge loses removed) and says so in its name: ``fake-daprd``.
"""

from __future__ import annotations

import asyncio
import copy
import http.server
import json
import logging
import signal
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import psutil
import pytest

from devtools.ports import free_port
from realdapr.watchdog import Watchdog, Watched
from tests.support.dapr_runs import all_gone, descendants, needs_dapr, one_app_template, start_run, wait_for

RECORDED = Path(__file__).parents[2] / "unit" / "tools" / "recorded" / "daprd_metadata_1.18.2.json"


def _daprd(pid: int) -> psutil.Process:
    return next(p for p in descendants(pid) if p.name() == "daprd")


@needs_dapr
def test_a_daprd_that_stops_answering_is_restarted_with_the_reason_logged(tmp_path: Path, pg_server_url: str) -> None:
    http_port = free_port()
    template = one_app_template(tmp_path / "t", http_port=http_port)
    proc, log = start_run(template, tmp_path, pg_server_url, "--watchdog-grace", "4")
    try:
        wait_for(log, "all 1 daprd sidecars are up", proc)
        frozen = _daprd(proc.pid)
        frozen.send_signal(signal.SIGSTOP)  # alive, its ports open, answering nothing: a hung daprd
        text = wait_for(log, "watchdog: restarting sleeper daprd", proc, timeout=60)
        line = next(x for x in text.splitlines() if "watchdog: restarting" in x)
        assert " WARNING " in line and "/v1.0/healthz does not answer" in line, line
        frozen.wait(20)  # killed (psutil.TimeoutExpired if it still ran)
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            try:
                if httpx.get(f"http://127.0.0.1:{http_port}/v1.0/healthz", timeout=2).is_success:
                    break
            except httpx.HTTPError:
                pass
            time.sleep(0.5)
        else:
            raise AssertionError("the restarted daprd did not come back")
        assert _daprd(proc.pid).pid != frozen.pid
        started = descendants(proc.pid)
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(60)
    assert all_gone(started) == []


@pytest.fixture
def fake_daprd() -> Iterator[tuple[str, dict]]:
    """fake-daprd: /v1.0/healthz and /v1.0/metadata answering what ``state["metadata"]`` holds."""
    yield from _serve_fake_daprd("127.0.0.1")


@pytest.fixture
def fake_daprd_in_a_pod() -> Iterator[tuple[str, dict]]:
    """fake-daprd at another loopback address, 127.0.0.2, standing for a pod's address: its app (the same server)
    answers there only, and the metadata names its channel address 127.0.0.1, as a real daprd beside its app in one
    network namespace does. Nothing answers at 127.0.0.1 on that port: the watchdog's own loopback is not the pod's."""
    yield from _serve_fake_daprd("127.0.0.2")


def _serve_fake_daprd(address: str) -> Iterator[tuple[str, dict]]:
    healthy = json.loads(RECORDED.read_text())["healthy"]
    state = {"healthz": healthy["healthz"], "metadata": copy.deepcopy(healthy["metadata"]), "app_healthz": 503}

    class Daprd(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            if self.path in ("/v1.0/healthz", "/healthz"):  # its own, and its app's (the app port: this server)
                self.send_response(state["healthz" if self.path == "/v1.0/healthz" else "app_healthz"])
                self.end_headers()
                return
            body = json.dumps(state["metadata"]).encode()
            self.send_response(200)
            self.send_header("content-type", "application/json")
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: object) -> None:
            pass

    server = http.server.ThreadingHTTPServer((address, free_port()), Daprd)
    state["metadata"]["appConnectionProperties"]["port"] = server.server_address[1]
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield f"http://{address}:{server.server_address[1]}", state
    finally:
        server.shutdown()


def test_a_daprd_whose_worker_is_connected_while_its_workflow_actors_are_not_hosted_is_restarted(
    fake_daprd: tuple[str, dict], caplog: pytest.LogCaptureFixture
) -> None:
    url, state = fake_daprd
    restarted: list[str] = []
    assert asyncio.run(watch(url, restarted, 2.5)).restarts == []  # well: nothing done
    kept = [a for a in state["metadata"]["actors"] if a["type"].endswith(".retentioner")]
    state["metadata"]["actors"] = state["metadata"]["actorRuntime"]["activeActors"] = kept
    with caplog.at_level(logging.WARNING, logger="realdapr"):
        dog = asyncio.run(watch(url, restarted, 3.0))
    assert restarted and set(restarted) == {"order-api daprd"}
    assert "dapr.internal.default.order-api.workflow is not hosted" in dog.restarts[0][1]
    assert any(
        "watchdog: restarting order-api daprd: unwell for" in r.getMessage() and "is not hosted" in r.getMessage()
        for r in caplog.records
    )


def test_a_daprd_that_counts_no_worker_of_an_app_that_is_up_is_restarted(
    fake_daprd: tuple[str, dict], caplog: pytest.LogCaptureFixture
) -> None:
    # The wedge as chaos caught it on daprd 1.18.2 (recorded): no workflows, no actors, placement connected.
    url, state = fake_daprd
    port = state["metadata"]["appConnectionProperties"]["port"]
    state["metadata"] = json.loads(RECORDED.read_text())["wedged"]["metadata"]
    state["metadata"]["appConnectionProperties"]["port"] = port
    restarted: list[str] = []
    assert asyncio.run(watch(url, restarted, 2.5)).restarts == []  # its app does not answer: daprd is right
    state["app_healthz"] = 200
    with caplog.at_level(logging.WARNING, logger="realdapr"):
        dog = asyncio.run(watch(url, restarted, 3.0))
    assert set(restarted) == {"order-api daprd"}
    assert "order-api answers its health check, but daprd counts no workflow worker" in dog.restarts[0][1]


def test_the_app_of_a_daprd_in_a_pod_is_asked_at_the_pods_address(fake_daprd_in_a_pod: tuple[str, dict]) -> None:
    # The cluster run's watchdog is outside the pods: the app's loopback channel address is reached at the address
    # daprd is reached at, or the wedge above would never be seen there (a 1,000-order cluster chaos run, 2026-12-07:
    # an order-api daprd with no worker and no actor type for minutes, its app answering at the pod's address).
    url, state = fake_daprd_in_a_pod
    port = state["metadata"]["appConnectionProperties"]["port"]
    state["metadata"] = json.loads(RECORDED.read_text())["wedged"]["metadata"]
    state["metadata"]["appConnectionProperties"]["port"] = port
    assert state["metadata"]["appConnectionProperties"]["channelAddress"] == "127.0.0.1"
    state["app_healthz"] = 200
    with pytest.raises(httpx.ConnectError):
        httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=2)
    restarted: list[str] = []
    dog = asyncio.run(watch(url, restarted, 3.0))
    assert set(restarted) == {"order-api daprd"}
    assert "order-api answers its health check, but daprd counts no workflow worker" in dog.restarts[0][1]


async def watch(url: str, restarted: list[str], seconds: float) -> Watchdog:
    """A watchdog on the order-api daprd at ``url`` (grace 1 s) for ``seconds``; what it restarts goes to
    ``restarted``."""

    def restart(launch: str) -> bool:
        restarted.append(launch)
        return True

    dog = Watchdog([Watched("order-api", "order-api daprd", url)], restart, grace=1.0, token="t", env={})
    stop = asyncio.Event()
    task = asyncio.create_task(dog.run(stop))
    await asyncio.sleep(seconds)
    stop.set()
    await task
    return dog
