"""The cluster run (``realdapr.cluster``) runs what deploy/ says: deploy/cluster rendered by kustomize, each
object valid against the Kubernetes and Dapr schemas, and every field the cluster reads honoured in the processes
it plans (ports, replicas, environment, Secrets, annotations, the Configuration and the resources). A manifest that
says what the cluster cannot do fails to load instead of running as something else: a drift between deploy/ and the
cluster fails here.

Needs the kustomize of ``make k8s-tools``; skipped without it (failed with REQUIRE_K8S_TOOLS=1), as the other
deploy/ checks.
"""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import pytest
import yaml

from devtools.k8s import K8sTools, render
from devtools.k8s_schemas import Schemas, objects
from realdapr.binaries import DaprBinaries
from realdapr.cluster import plan
from realdapr.cluster.injector import CONTAINER_ONLY
from realdapr.cluster.netns import Host
from realdapr.cluster.run import PORTS, liveness_grace
from realdapr.cluster.topology import Topology, TopologyError, load, write_resources
from realdapr.commands import Mtls
from tests.support import REPO

CLUSTER = REPO / "deploy" / "cluster"
DB = "10.99.0.3"
CP = Host("cp", "x-cp", "xv0", "10.99.0.2")
POD = Host("n1-app", "x-n1-app", "xv1", "10.99.0.10")
# Every dapr.io annotation deploy/ uses, and the daprd flag it must become (None: a flag of its own name, no value).
FLAGS: dict[str, str | None] = {
    "dapr.io/app-id": "--app-id",
    "dapr.io/app-port": "--app-port",
    "dapr.io/app-protocol": "--app-protocol",
    "dapr.io/log-as-json": None,
    "dapr.io/enable-app-health-check": None,
    "dapr.io/app-health-check-path": "--app-health-check-path",
    "dapr.io/graceful-shutdown-seconds": "--dapr-graceful-shutdown-seconds",
}
# Honoured elsewhere: the enabled switch (which Deployments are apps), the Configuration (checked below), and
# daprd's probes: readiness is what the runner waits for, liveness sets the watchdog's grace (checked below).
ELSEWHERE = {"dapr.io/enabled", "dapr.io/config"}
PROBES = "dapr.io/sidecar-"


@pytest.fixture(scope="module")
def rendered(tools: K8sTools) -> str:
    return render(tools, CLUSTER)


@pytest.fixture(scope="module")
def docs(rendered: str) -> list[dict[str, Any]]:
    return list(objects(rendered))


@pytest.fixture(scope="module")
def topology(rendered: str) -> Topology:
    return load(rendered)


def test_the_cluster_overlay_is_valid_against_the_schemas(tools: K8sTools, docs: list[dict[str, Any]]) -> None:
    schemas = Schemas.of(tools)
    failures = [str(f) for obj in docs for f in schemas.check(obj)]
    assert failures == []


def test_every_app_of_the_manifests_runs_with_its_replicas_ports_and_service(
    docs: list[dict[str, Any]], topology: Topology
) -> None:
    deployments = {d["metadata"]["name"]: d for d in docs if d["kind"] == "Deployment"}
    assert sorted(app.name for app in topology.apps) == sorted(deployments)
    numbers, pods = plan.hosts(topology, max(app.replicas for app in topology.apps))
    for app in topology.apps:
        spec = deployments[app.name]["spec"]
        container = spec["template"]["spec"]["containers"][0]
        assert app.replicas == spec["replicas"] == len([p for p in pods if p.app is app])
        assert app.container.command == container["command"]
        assert app.container.port == container["ports"][0]["containerPort"]
        service = next(d for d in docs if d["kind"] == "Service" and d["metadata"]["name"] == app.name)
        assert app.service_port == service["spec"]["ports"][0]["port"]
        assert [c.command for c in app.init] == [c["command"] for c in spec["template"]["spec"]["initContainers"]]
    assert len(set(numbers.values())) == len(numbers)


def test_every_annotation_becomes_the_daprd_flag_the_injector_makes(
    docs: list[dict[str, Any]], topology: Topology, tmp_path: Path
) -> None:
    configs = write_resources(topology, tmp_path / "resources", DB)
    mtls = Mtls(f"{CP.address}:{PORTS.sentry}", tmp_path / "ca.crt")
    dapr = DaprBinaries(tmp_path, "1.18.2", "test", tmp_path / "sentry")
    for doc in (d for d in docs if d["kind"] == "Deployment"):
        annotations = doc["spec"]["template"]["metadata"]["annotations"]
        pod = plan.Pod("n1-x", topology.app(annotations["dapr.io/app-id"]), "n1")
        command = plan.daprd_command(pod, POD, dapr, CP, PORTS, tmp_path / "resources", configs, mtls)
        for key, value in annotations.items():
            if key in ELSEWHERE or key.startswith(PROBES) or key in CONTAINER_ONLY:
                continue
            assert key in FLAGS, f"{doc['metadata']['name']}: {key} is in deploy/, and this test does not check it"
            flag = FLAGS[key]
            if flag is None:
                assert f"--{key.removeprefix('dapr.io/')}" in command
            else:
                assert command[command.index(flag) + 1] == value, key
        config = command[command.index("--config") + 1]
        wanted = next(
            d for d in docs if d["kind"] == "Configuration" and d["metadata"]["name"] == annotations["dapr.io/config"]
        )
        assert yaml.safe_load(Path(config).read_text()) == wanted
        assert command[command.index("--sentry-address") + 1] == mtls.sentry_address
        assert "--enable-mtls" in command
    liveness = {
        int(d["spec"]["template"]["metadata"]["annotations"]["dapr.io/sidecar-liveness-probe-period-seconds"])
        * int(d["spec"]["template"]["metadata"]["annotations"]["dapr.io/sidecar-liveness-probe-threshold"])
        for d in docs
        if d["kind"] == "Deployment"
    }
    assert liveness_grace(topology) == max(liveness)


def test_environment_secrets_and_resources_point_at_the_clusters_own_database(
    docs: list[dict[str, Any]], topology: Topology, tmp_path: Path
) -> None:
    assert topology.database is not None
    for app in topology.apps:
        pod = plan.Pod("n1-x", app, "n1")
        env = plan.container_env(pod, app.container, topology.database.hostnames, DB, {"EXTRA": "1"})
        for name, value in app.container.env.items():
            assert env[name] == value.replace("postgres.shop.svc.cluster.local", DB), name
        assert f"@{DB}:5432/" in env["DATABASE_URL"]
        assert env["EXTRA"] == "1" and env["DAPR_HTTP_PORT"] == "3500"
    write_resources(topology, tmp_path / "resources", DB)
    written = {
        (d["kind"], d["metadata"]["name"]): d
        for f in sorted((tmp_path / "resources").glob("*.yaml"))
        for d in yaml.safe_load_all(f.read_text())
    }
    dapr_kinds = {(d["kind"], d["metadata"]["name"]) for d in docs if d["apiVersion"].startswith("dapr.io/")}
    assert set(written) | {("Configuration", "wfconfig")} == dapr_kinds
    store = written[("Component", "workflowstore")]
    connection = next(m for m in store["spec"]["metadata"] if m["name"] == "connectionString")
    assert f"host={DB} " in connection["value"] and "auth" not in store


def _with(docs: list[dict[str, Any]], change: Any) -> str:
    changed = copy.deepcopy(docs)
    order_api = next(d for d in changed if d["kind"] == "Deployment" and d["metadata"]["name"] == "order-api")
    change(order_api["spec"]["template"])
    return yaml.safe_dump_all(changed)


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda t: t["metadata"]["annotations"].update({"dapr.io/app-prot": "8000"}), "not an annotation"),
        (lambda t: t["metadata"]["annotations"].update({"dapr.io/api-token-secret": "tok"}), "cannot honour"),
        (lambda t: t["metadata"]["annotations"].update({"dapr.io/app-port": "eighty"}), "not an integer"),
        (
            lambda t: t["spec"]["containers"][0]["env"].append({"name": "POD_IP", "valueFrom": {"fieldRef": {}}}),
            "cannot give",
        ),
        (lambda t: t["spec"]["containers"].append(t["spec"]["containers"][0]), "2 containers"),
        (lambda t: t["spec"]["containers"][0]["readinessProbe"]["httpGet"].update({"port": 9999}), "not its container"),
        (
            lambda t: t["spec"]["containers"][0]["env"].append(
                {"name": "X", "valueFrom": {"secretKeyRef": {"name": "nope", "key": "k"}}}
            ),
            "do not define",
        ),
    ],
)
def test_a_manifest_the_cluster_cannot_honour_fails_to_load(
    docs: list[dict[str, Any]], change: Any, message: str
) -> None:
    with pytest.raises(TopologyError, match=message):
        load(_with(docs, change))
