"""The cluster (``make run-cluster``, ``realdapr.cluster``): real Dapr 1.18.2 across network namespaces, two nodes
each running one replica of every app with its own daprd, as deploy/cluster renders it. Work spreads over
every replica, a saga whose node dies finishes on the other node, and a stopped or SIGKILLed runner leaves nothing
behind once the next start (``down``) has run. Each replica's work is counted from its own lines in the runner's
log (every line is prefixed with its pod: ``[n1-shipping]``).

Skipped, with the reason, without root (network namespaces), without ``make dapr`` (daprd, sentry) or without
``make k8s-tools`` (kustomize); failed instead with REQUIRE_CLUSTER=1, as CI sets it.
"""

from __future__ import annotations

import re
import subprocess
import sys
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from realdapr.cluster import launch, netns
from realdapr.cluster.heal import listed_hosts
from realdapr.cluster.state import Cluster
from tests.support import REPO
from tests.support.cluster import require_cluster
from tests.support.orders import new_id, order_body, until

PREFIX = "sgt"  # not the default: a user's `make run-cluster` may be running beside the tests
SUBNET = "10.214.0.0/24"
ACTIVITY_APPS = ("inventory", "payment", "shipping", "notification")
_LINE = re.compile(r"^\[(n\d+)-([a-z-]+)\] (.*)$")


@dataclass
class Running:
    proc: subprocess.Popen[bytes]
    cluster: Cluster
    log: Path
    data: Path

    def lines(self) -> list[tuple[str, str, str]]:
        """(node, app, text) of every line an app or daprd of a pod wrote."""
        found = []
        for line in self.log.read_text(errors="replace").splitlines():
            match = _LINE.match(line)
            if match:
                found.append((match[1], match[2], match[3]))
        return found


@pytest.fixture(scope="module")
def running(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Running]:
    require_cluster()
    folder = tmp_path_factory.mktemp("cluster")
    data, log = folder / "data", folder / "runner.log"
    env = {"FAULTS_ENABLED": "true", "FAULTS_ALLOW_REMOTE": "true", "OPERATOR_ALLOW_REMOTE": "true"}
    cmd = launch.command(data, prefix=PREFIX, subnet=SUBNET, env=env)
    proc, cluster = launch.start(cmd, data, log)
    try:
        yield Running(proc, cluster, log, data)
    finally:
        launch.stop(proc)


def _order(url: str, order_id: str) -> None:
    # A connection of its own per order: the proxy spreads connections, not requests.
    response = httpx.post(f"{url}/orders", json=order_body(order_id), timeout=30)
    assert response.status_code == 202, response.text


def _status(url: str, order_id: str) -> str:
    response = httpx.get(f"{url}/orders/{order_id}", timeout=30)
    return str(response.json()["status"]) if response.status_code == 200 else f"HTTP {response.status_code}"


def test_orders_and_activities_spread_over_every_replica(running: Running) -> None:
    api = running.cluster.proxies["order-api"]
    ids = [new_id("spread") for _ in range(16)]
    for order_id in ids:
        _order(api, order_id)
    until(lambda: all(_status(api, i) == "COMPLETED" for i in ids), "every order COMPLETED", timeout=240)

    accepted: Counter[str] = Counter()
    executed: Counter[tuple[str, str]] = Counter()
    for node, app, text in running.lines():
        if app == "order-api" and '"POST /orders HTTP/1.1" 202' in text:
            accepted[node] += 1
        if "common.activity: " in text and any(i in text for i in ids):
            executed[(app, node)] += 1
    nodes = running.cluster.nodes
    assert nodes == ["n1", "n2"]
    assert all(accepted[n] > 0 for n in nodes), f"orders accepted per order-api replica: {dict(accepted)}"
    for app in ACTIVITY_APPS:
        per_node = {n: executed[(app, n)] for n in nodes}
        assert all(per_node.values()), f"{app}'s activities per replica: {per_node}"


def test_a_saga_whose_node_dies_finishes_on_the_other_node(running: Running) -> None:
    cluster = running.cluster
    api, shipping = cluster.proxies["order-api"], cluster.proxies["shipping"]
    order_id = new_id("nodedies")
    fault = {"mode": "delay", "delay_ms": 60000, "order_id": order_id, "count": 1}
    assert httpx.put(f"{shipping}/faults/ship", json=fault, timeout=30).status_code == 200
    _order(api, order_id)

    def holder() -> str | None:
        for node, app, text in running.lines():
            if app == "shipping" and "FAULT INJECTED" in text and order_id in text:
                return node
        return None

    node = until(holder, f"{order_id}'s ship held by the delay on a shipping replica", timeout=120)
    other = next(n for n in cluster.nodes if n != node)
    seen_before = len(running.lines())
    killed = cluster.crash_node(node)
    # Kept off the network (its processes restart, and reach nothing) until the order is done: it stays dead.
    cluster.partition_node(node)
    try:
        assert killed, f"no process of {node} was found to kill"
        until(lambda: _status(api, order_id) == "COMPLETED", f"{order_id} COMPLETED without {node}", timeout=300)
    finally:
        cluster.partition_node(node, cut=False)
    after = running.lines()[seen_before:]
    shipped = [(n, text) for n, app, text in after if app == "shipping" and f"ship {order_id}" in text]
    assert shipped and all(n == other for n, _ in shipped), f"ship of {order_id} after {node} died: {shipped}"


def test_a_node_cut_off_longer_than_placements_keepalive_rejoins_placement(running: Running) -> None:
    """Dapr 1.18.2's daprd does not notice that placement dropped it during a partition (no keepalive on that
    stream) and never rejoins by itself: the runner's healer (realdapr/cluster/heal.py) ends the stale connection."""
    cluster = running.cluster
    expected = {f"{pod['address']}:50002" for pod in cluster.pods().values()}
    state_url = cluster.doc["control_plane"]["placement_state"]

    def listed() -> set[str]:
        try:
            return listed_hosts(httpx.get(state_url, timeout=5).json())
        except (httpx.HTTPError, ValueError):
            return set()

    until(lambda: listed() == expected, "placement lists every pod before the partition", timeout=180)
    node = cluster.nodes[-1]
    cut_off = {f"{pod['address']}:50002" for pod in cluster.pods(node=node).values()}
    cluster.partition_node(node)
    try:
        until(lambda: not listed() & cut_off, f"placement drops {node}'s pods (its keepalive)", timeout=60)
    finally:
        cluster.partition_node(node, cut=False)
    until(lambda: listed() == expected, f"placement lists {node}'s pods again after the partition", timeout=120)


def test_a_sigkilled_runner_leaves_what_the_next_start_removes(running: Running) -> None:
    running.proc.kill()
    running.proc.wait()
    # Its processes die with it (a parent-death signal each); PostgreSQL and the network stay until the next start.
    until(lambda: not _pod_processes(running.cluster), "the pods' processes gone after the runner", timeout=60)
    assert netns.leftovers(PREFIX), "the network should still be there"
    done = subprocess.run(
        [sys.executable, "-m", "realdapr.cluster", "--data-dir", str(running.data), "--prefix", PREFIX, "down"],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    assert netns.leftovers(PREFIX) == []
    assert not _pod_processes(running.cluster)


def _pod_processes(cluster: Cluster) -> list[int]:
    return [pid for name in cluster.pods() for pid in netns.pids_of(cluster.host(name))]
