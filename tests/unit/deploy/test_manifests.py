"""Static checks of the Dapr resources (components/), the Kubernetes manifests (deploy/) and dapr.yaml.

No cluster and no daprd: PyYAML loads every file and the tests hold it against the Dapr 1.18.3 / CLI 1.18
schemas and common/contracts.py. The rendered overlays, checked against the Kubernetes and Dapr schemas, are
tests/integration/deploy/test_rendered.py.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from common.contracts import ACTIVITY_APP, INVENTORY, NOTIFICATION, ORDER_API, PAYMENT, SHIPPING, WORKFLOW_APP
from sidecar.restarting import unwrap

ROOT = Path(__file__).resolve().parents[3]
COMPONENTS = ROOT / "components"
DEPLOY = ROOT / "deploy"
TEMPLATE = ROOT / "dapr.yaml"

APP_IDS = {ORDER_API, PAYMENT, INVENTORY, SHIPPING, NOTIFICATION}
NAMESPACE = "shop"
IMAGE = "dapr-saga-fulfillment"  # base names it; overlays (or `kustomize edit set image`) point it at a registry

# Pod annotations every app needs; None means "any value, checked elsewhere".
REQUIRED_ANNOTATIONS: dict[str, str | None] = {
    "dapr.io/enabled": "true",
    "dapr.io/app-id": None,
    "dapr.io/app-port": None,
    "dapr.io/app-protocol": "http",
    "dapr.io/config": None,
    "dapr.io/log-as-json": "true",
    "dapr.io/enable-app-health-check": "true",
    "dapr.io/app-health-check-path": "/healthz",
    "dapr.io/graceful-shutdown-seconds": None,
}

# The dapr CLI's run-template schema (dapr/cli pkg/runfileconfig, pkg/standalone/run.go `yaml:` tags).
TEMPLATE_TOP_KEYS = {"version", "name", "common", "apps"}
TEMPLATE_APP_ONLY_KEYS = {
    "appID", "appDirPath", "appPort", "appChannelAddress", "daprHTTPPort", "daprGRPCPort",
    "daprInternalGRPCPort", "metricsPort", "profilePort", "unixDomainSocket", "command",
    "containerImage", "containerImagePullPolicy", "createService",
}  # fmt: skip
TEMPLATE_SHARED_KEYS = {
    "configFilePath", "appProtocol", "logLevel", "enableApiLogging", "resourcesPaths", "resourcesPath",
    "env", "enableAppHealthCheck", "appHealthCheckPath", "appHealthProbeInterval", "appHealthProbeTimeout",
    "appHealthThreshold", "appMaxConcurrency", "maxBodySize", "readBufferSize", "placementHostAddress",
    "schedulerHostAddress", "apiListenAddresses", "enableProfiling", "appSSL", "runtimePath",
    "appLogDestination", "daprdLogDestination",
}  # fmt: skip
APP_PROTOCOLS = {"http", "https", "grpc", "grpcs", "h2c"}
PORT_KEYS = ("appPort", "daprHTTPPort", "daprGRPCPort", "daprInternalGRPCPort", "metricsPort", "profilePort")


# --- loading -------------------------------------------------------------------------------------------


def yaml_files(root: Path) -> list[Path]:
    return sorted(p for p in root.rglob("*") if p.suffix in {".yaml", ".yml"} and p.is_file())


def load_docs(path: Path) -> list[Any]:
    with path.open() as f:
        return [d for d in yaml.safe_load_all(f) if d is not None]


def patch_files(root: Path) -> set[Path]:
    """Files kustomizations under root use as patches: partial objects, not resources of their own."""
    return {
        (k.parent / patch["path"]).resolve()
        for k in root.rglob("kustomization.yaml")
        for patch in yaml.safe_load(k.read_text()).get("patches", [])
    }


def resources(root: Path, kind: str | None = None, *, with_patches: bool = False) -> list[dict]:
    """Every Kubernetes/Dapr object under root (Kustomizations and, unless asked, patches excluded)."""
    skip = set() if with_patches else patch_files(root)
    docs = [d for p in yaml_files(root) if p.resolve() not in skip for d in load_docs(p)]
    docs = [d for d in docs if d.get("kind") != "Kustomization"]
    return [d for d in docs if kind is None or d["kind"] == kind]


def by_name(docs: list[dict]) -> dict[str, dict]:
    names = [d["metadata"]["name"] for d in docs]
    assert len(names) == len(set(names)), f"duplicate names: {names}"
    return dict(zip(names, docs, strict=True))


def walk(node: Any) -> Iterator[Any]:
    yield node
    children = node.values() if isinstance(node, dict) else node if isinstance(node, list) else ()
    for child in children:
        yield from walk(child)


def containers(deployment: dict) -> list[dict]:
    spec = deployment["spec"]["template"]["spec"]
    return spec.get("initContainers", []) + spec["containers"]


def app_container(deployment: dict) -> dict:
    (app,) = [c for c in deployment["spec"]["template"]["spec"]["containers"] if c["name"] == "app"]
    return app


def env_of(container: dict) -> dict[str, dict]:
    return {e["name"]: e for e in container.get("env", [])}


def hosted_activities(app_id: str) -> set[str]:
    return {activity for activity, host in ACTIVITY_APP.items() if host == app_id}


@pytest.fixture(scope="module")
def template() -> dict:
    return yaml.safe_load(TEMPLATE.read_text())


@pytest.fixture(scope="module")
def template_apps(template: dict) -> dict[str, dict]:
    return {app["appID"]: app for app in template["apps"]}


@pytest.fixture(scope="module")
def deployments() -> dict[str, dict]:
    """Deployments under deploy/, keyed by their Dapr app ID."""
    docs = resources(DEPLOY, "Deployment")
    ids = [d["spec"]["template"]["metadata"]["annotations"]["dapr.io/app-id"] for d in docs]
    assert len(ids) == len(set(ids)), f"an app ID has more than one Deployment: {ids}"
    return dict(zip(ids, docs, strict=True))


# --- every file ----------------------------------------------------------------------------------------


@pytest.mark.parametrize("root", [COMPONENTS, DEPLOY], ids=["components", "deploy"])
def test_every_yaml_file_parses_into_typed_and_named_objects(root: Path) -> None:
    files = yaml_files(root)
    assert files, f"no YAML under {root}"
    for path in files:
        docs = load_docs(path)
        assert docs, f"{path} is empty"
        for doc in docs:
            assert isinstance(doc, dict) and doc.get("apiVersion") and doc.get("kind"), path
            if doc["kind"] != "Kustomization":
                assert doc.get("metadata", {}).get("name"), f"{path}: {doc['kind']} without metadata.name"


def test_every_kustomization_lists_only_files_and_directories_that_exist() -> None:
    kustomizations = list(DEPLOY.rglob("kustomization.yaml"))
    assert kustomizations
    for k in kustomizations:
        spec = yaml.safe_load(k.read_text())
        assert spec["kind"] == "Kustomization" and spec["resources"], k
        for entry in spec["resources"]:
            target = (k.parent / entry).resolve()
            assert target.is_file() or (target / "kustomization.yaml").is_file(), f"{k}: {entry} missing"
        for patch in spec.get("patches", []):
            assert (k.parent / patch["path"]).is_file(), f"{k}: patch {patch['path']} missing"


def test_every_manifest_under_deploy_is_reachable_from_a_kustomization() -> None:
    referenced: set[Path] = set()
    for k in DEPLOY.rglob("kustomization.yaml"):
        spec = yaml.safe_load(k.read_text())
        referenced.add(k.resolve())
        referenced |= {(k.parent / e).resolve() for e in spec.get("resources", [])}
        referenced |= {(k.parent / p["path"]).resolve() for p in spec.get("patches", [])}
    orphans = [p for p in yaml_files(DEPLOY) if p.resolve() not in referenced]
    assert not orphans, f"never applied by kustomize: {orphans}"


def test_everything_namespaced_in_deploy_lives_in_namespace_shop() -> None:
    docs = resources(DEPLOY)
    assert [d["metadata"]["name"] for d in docs if d["kind"] == "Namespace"] == [NAMESPACE]
    for doc in docs:
        if doc["kind"] != "Namespace":
            assert doc["metadata"].get("namespace") == NAMESPACE, f"{doc['kind']}/{doc['metadata']['name']}"
    base = yaml.safe_load((DEPLOY / "base" / "kustomization.yaml").read_text())
    assert base["namespace"] == NAMESPACE


# --- Deployments -----------------------------------------------------------------------------------------


def test_each_of_the_five_apps_has_one_deployment_and_one_service(deployments: dict[str, dict]) -> None:
    assert set(deployments) == APP_IDS
    services = by_name(resources(DEPLOY, "Service"))
    for app_id, deployment in deployments.items():
        selector = deployment["spec"]["selector"]["matchLabels"]
        assert selector.items() <= deployment["spec"]["template"]["metadata"]["labels"].items(), app_id
        assert services[app_id]["spec"]["selector"] == selector, app_id


def test_every_deployment_carries_the_dapr_annotations_the_sidecar_needs(deployments: dict[str, dict]) -> None:
    configurations = by_name(resources(DEPLOY, "Configuration"))
    for app_id, deployment in deployments.items():
        annotations = deployment["spec"]["template"]["metadata"]["annotations"]
        for key, expected in REQUIRED_ANNOTATIONS.items():
            assert isinstance(annotations.get(key), str), f"{app_id}: {key} missing or not a string"
            if expected is not None:
                assert annotations[key] == expected, f"{app_id}: {key}={annotations[key]!r}"
        assert annotations["dapr.io/app-id"] in APP_IDS
        assert annotations["dapr.io/config"] in configurations, f"{app_id}: config names no Configuration"
        grace = int(annotations["dapr.io/graceful-shutdown-seconds"])
        assert deployment["spec"]["template"]["spec"]["terminationGracePeriodSeconds"] > grace, app_id


# What the injector of Dapr 1.18 reads for daprd's own probes (pkg/injector/patcher/sidecar.go), and its defaults.
SIDECAR_PROBE_DEFAULTS = {
    "liveness": {"delay-seconds": 180, "timeout-seconds": 3, "period-seconds": 10, "threshold": 5},
    "readiness": {"delay-seconds": 1, "timeout-seconds": 1, "period-seconds": 1, "threshold": 5},
}


def test_every_daprd_gets_liveness_and_readiness_probes_sooner_than_the_injectors_defaults(
    deployments: dict[str, dict],
) -> None:
    for app_id, deployment in deployments.items():
        annotations = deployment["spec"]["template"]["metadata"]["annotations"]
        probes = {}
        for probe, defaults in SIDECAR_PROBE_DEFAULTS.items():
            settings = {}
            for setting in defaults:
                value = annotations.get(f"dapr.io/sidecar-{probe}-probe-{setting}")
                assert isinstance(value, str) and value.isdigit() and int(value) > 0, f"{app_id}: {probe} {setting}"
                settings[setting] = int(value)
            probes[probe] = settings
        liveness, readiness = probes["liveness"], probes["readiness"]
        # A daprd whose port stops accepting is restarted within a minute of it, not after 180 s plus 50.
        assert liveness["delay-seconds"] < SIDECAR_PROBE_DEFAULTS["liveness"]["delay-seconds"], app_id
        assert liveness["period-seconds"] * liveness["threshold"] <= 60, app_id
        assert liveness["timeout-seconds"] < liveness["period-seconds"], app_id
        assert readiness["timeout-seconds"] <= readiness["period-seconds"], app_id
        # Never a restart before daprd could be ready: it is taken out of the Service first.
        assert readiness["delay-seconds"] < liveness["delay-seconds"], app_id


def test_app_port_agrees_across_annotation_env_container_and_dapr_yaml(
    deployments: dict[str, dict], template_apps: dict[str, dict]
) -> None:
    for app_id, deployment in deployments.items():
        port = deployment["spec"]["template"]["metadata"]["annotations"]["dapr.io/app-port"]
        app = app_container(deployment)
        assert env_of(app)["APP_PORT"]["value"] == port, app_id
        assert [p["containerPort"] for p in app["ports"] if p["name"] == "http"] == [int(port)], app_id
        assert template_apps[app_id]["appPort"] == int(port), app_id


def test_each_app_runs_the_command_dapr_yaml_runs_and_knows_its_app_id(
    deployments: dict[str, dict], template_apps: dict[str, dict]
) -> None:
    for app_id, deployment in deployments.items():
        app = app_container(deployment)
        # Kubernetes restarts the container itself: the command without dapr.yaml's restart wrapper.
        assert app["command"] == list(unwrap(template_apps[app_id]["command"])), app_id
        # The Kubernetes injector sets no APP_ID, so the Deployment must.
        assert env_of(app)["APP_ID"]["value"] == app_id
        for container in containers(deployment):
            assert container["image"].split(":")[0] == IMAGE, app_id


def test_app_containers_have_readiness_and_liveness_probes_on_healthz(deployments: dict[str, dict]) -> None:
    for app_id, deployment in deployments.items():
        app = app_container(deployment)
        for probe in ("readinessProbe", "livenessProbe"):
            http_get = app[probe]["httpGet"]
            assert http_get["path"] == "/healthz", f"{app_id} {probe}"
            assert http_get["port"] in {p["name"] for p in app["ports"]} | {p["containerPort"] for p in app["ports"]}


def test_migrations_run_in_an_init_container_on_the_apps_own_database(
    deployments: dict[str, dict], template_apps: dict[str, dict]
) -> None:
    for app_id, deployment in deployments.items():
        (migrate,) = deployment["spec"]["template"]["spec"]["initContainers"]
        package = template_apps[app_id]["command"][-1]  # `python -m <package>`
        assert migrate["command"] == ["python", "-m", "common.migrate", package], app_id
        assert env_of(migrate)["DATABASE_URL"] == env_of(app_container(deployment))["DATABASE_URL"], app_id


def generated_secrets(overlay: Path) -> dict[str, set[str]]:
    """The Secrets an overlay's kustomization generates: name -> the keys it gives them."""
    kustomization = yaml.safe_load((overlay / "kustomization.yaml").read_text())
    made: dict[str, set[str]] = {}
    for generator in kustomization.get("secretGenerator", []):
        entries = [*generator.get("literals", []), *generator.get("files", [])]
        made[generator["name"]] = {entry.split("=", 1)[0] for entry in entries}
    return made


OVERLAYS = sorted(p for p in (DEPLOY / "overlays").iterdir() if p.is_dir())


def test_database_urls_come_from_one_secret_per_service_that_every_overlay_makes(deployments: dict[str, dict]) -> None:
    used = []
    for app_id, deployment in deployments.items():
        ref = env_of(app_container(deployment))["DATABASE_URL"]["valueFrom"]["secretKeyRef"]
        assert ref["key"] == "DATABASE_URL", app_id
        used.append(ref["name"])
        for overlay in OVERLAYS:
            assert ref["key"] in generated_secrets(overlay).get(ref["name"], set()), f"{overlay.name}: {ref}"
    assert len(set(used)) == len(APP_IDS), f"services share a database secret: {used}"


def test_no_secret_is_written_into_the_manifests_only_generated_by_the_overlays() -> None:
    assert resources(DEPLOY, "Secret") == []
    assert [p.name for p in OVERLAYS] == ["prod", "trial"]
    for overlay in OVERLAYS:
        options = yaml.safe_load((overlay / "kustomization.yaml").read_text())["generatorOptions"]
        # Dapr's Component names its secret; kustomize cannot rewrite that name, so no hash suffix may be added.
        assert options["disableNameSuffixHash"] is True, overlay.name
    # Production's values are the user's own files, never committed; the trial's are fixed and say so.
    assert all(
        "files" in g
        for g in yaml.safe_load((DEPLOY / "overlays/prod/kustomization.yaml").read_text())["secretGenerator"]
    )
    assert "trial-only" in (DEPLOY / "overlays/trial/kustomization.yaml").read_text()


def test_fault_injection_is_off_everywhere_in_deploy(deployments: dict[str, dict]) -> None:
    settings = [
        node for doc in resources(DEPLOY, with_patches=True) for node in walk(doc)
        if isinstance(node, dict) and node.get("name") == "FAULTS_ENABLED"
    ]  # fmt: skip
    assert len(settings) >= len(APP_IDS)
    assert all(s.get("value") == "false" and "valueFrom" not in s for s in settings), settings
    for app_id, deployment in deployments.items():
        assert env_of(app_container(deployment))["FAULTS_ENABLED"]["value"] == "false", app_id


# --- Dapr resources ----------------------------------------------------------------------------------


def access_policies(root: Path) -> dict[str, dict]:
    """WorkflowAccessPolicies under root, keyed by the one app each is scoped to."""
    policies = resources(root, "WorkflowAccessPolicy")
    for policy in policies:
        assert policy["apiVersion"] == "dapr.io/v1alpha1"
        assert len(policy["scopes"]) == 1, f"{policy['metadata']['name']}: scope it to exactly one app"
    keyed = {p["scopes"][0]: p for p in policies}
    assert len(keyed) == len(policies), "more than one policy for an app"
    return keyed


@pytest.mark.parametrize("root", [COMPONENTS, DEPLOY], ids=["components", "deploy"])
def test_access_policies_let_only_order_api_schedule_exactly_the_activities_and_workflows_each_app_hosts(
    root: Path,
) -> None:
    policies = access_policies(root)
    assert set(policies) == set(ACTIVITY_APP.values())
    for app_id, policy in policies.items():
        rules = policy["spec"]["rules"]
        callers = {c["appID"] for rule in rules for c in rule["callers"]}
        assert callers == {ORDER_API}, f"{app_id}: callers {callers}"
        names = [a["name"] for rule in rules for a in rule.get("activities", [])]
        workflows = [w["name"] for rule in rules for w in rule.get("workflows", [])]
        assert not any(set(n) & set("*?[") for n in names + workflows), f"{app_id}: no globs, exact names only"
        assert Counter(names) == Counter(hosted_activities(app_id)), f"{app_id}: {names}"
        hosted = [w for w, host in WORKFLOW_APP.items() if host == app_id]
        assert Counter(workflows) == Counter(hosted), f"{app_id}: {workflows}"
        # The parent schedules its child, and a terminate or purge of the parent reaches the child across apps,
        # which the parent then reads: daprd 1.18.2 checks each on the child's app (a denial stalls the parent).
        ops = [sorted(w["operations"]) for rule in rules for w in rule.get("workflows", [])]
        assert all(o == ["get", "purge", "schedule", "terminate"] for o in ops), f"{app_id}: {ops}"


def test_no_access_policy_is_loaded_by_the_dapr_cli_which_has_no_mtls(template: dict) -> None:
    # daprd reads only the top level of each resources path; a policy loaded there without mTLS
    # makes the callee deny every cross-app activity (it cannot tell who calls). make run-dapr, with
    # sentry, loads the access-policies folder as a resources path of its own.
    paths = [ROOT / p for p in template["common"]["resourcesPaths"]]
    paths += [ROOT / a["appDirPath"] / p for a in template["apps"] for p in a.get("resourcesPaths", [])]
    assert paths
    for path in paths:
        kinds = {d["kind"] for f in path.glob("*.y*ml") for d in load_docs(f)}
        assert "WorkflowAccessPolicy" not in kinds, path
    assert access_policies(COMPONENTS), "the policies make run and make run-dapr enforce"


@pytest.mark.parametrize("root", [COMPONENTS, DEPLOY], ids=["components", "deploy"])
def test_the_one_actor_store_is_postgresql_v2_shared_by_all_five_apps(root: Path) -> None:
    stores = [
        c for c in resources(root, "Component")
        if any(m["name"] == "actorStateStore" and m.get("value") == "true" for m in c["spec"]["metadata"])
    ]  # fmt: skip
    assert [s["metadata"]["name"] for s in stores] == ["workflowstore"]
    (store,) = stores
    assert store["spec"]["type"] == "state.postgresql"
    assert store["spec"]["version"] == "v2"
    assert set(store["scopes"]) == APP_IDS and len(store["scopes"]) == len(APP_IDS)


def test_the_local_store_points_at_its_own_dapr_workflows_database() -> None:
    (store,) = resources(COMPONENTS, "Component")
    conn = {m["name"]: m for m in store["spec"]["metadata"]}["connectionString"]["value"]
    fields = dict(part.split("=", 1) for part in conn.split())
    assert fields["database"] == "dapr_workflows"
    assert fields["host"] in {"localhost", "127.0.0.1"}


def test_the_kubernetes_store_reads_its_connection_string_from_a_secret_every_overlay_makes() -> None:
    store = by_name(resources(DEPLOY, "Component"))["workflowstore"]
    conn = {m["name"]: m for m in store["spec"]["metadata"]}["connectionString"]
    assert "value" not in conn
    ref = conn["secretKeyRef"]
    for overlay in OVERLAYS:
        assert ref["key"] in generated_secrets(overlay).get(ref["name"], set()), overlay.name
    assert store["auth"]["secretStore"] == "kubernetes"


def features(config: dict) -> dict[str, bool]:
    return {f["name"]: f["enabled"] for f in config["spec"].get("features", [])}


def test_local_config_traces_everything_to_zipkin_and_does_not_sign_history(template: dict) -> None:
    config = yaml.safe_load((ROOT / template["common"]["configFilePath"]).read_text())
    assert config["kind"] == "Configuration" and config["metadata"]["name"] == "wfconfig"
    assert config["spec"]["tracing"]["samplingRate"] == "1"
    assert config["spec"]["tracing"]["zipkin"]["endpointAddress"].startswith("http://localhost:9411/")
    # daprd refuses to start with WorkflowHistorySigning and no mTLS, and `dapr run -f` has no Sentry.
    assert "WorkflowHistorySigning" not in features(config)


def test_kubernetes_config_signs_workflow_history() -> None:
    config = by_name(resources(DEPLOY / "base", "Configuration"))["wfconfig"]
    assert features(config) == {"WorkflowHistorySigning": True}
    assert isinstance(config["spec"]["tracing"]["samplingRate"], str)


@pytest.mark.parametrize("folder", [DEPLOY, COMPONENTS], ids=["deploy", "local"])
def test_resiliency_retries_workflow_store_calls_through_a_store_restart_without_a_circuit_breaker(
    folder: Path,
) -> None:
    # A PostgreSQL restart takes seconds. A breaker tripped by it kept failing calls for its timeout after the store
    # was back, and daprd dropped workflows whose creation failed meanwhile (the cluster's chaos run).
    (resiliency,) = resources(folder, "Resiliency")
    policies = resiliency["spec"]["policies"]
    outbound = resiliency["spec"]["targets"]["components"]["workflowstore"]["outbound"]
    assert outbound["timeout"] in policies["timeouts"]
    assert policies["retries"][outbound["retry"]]["maxRetries"] >= 5
    assert "circuitBreaker" not in outbound and "circuitBreakers" not in policies
    assert set(resiliency["scopes"]) == APP_IDS


# --- dapr.yaml ------------------------------------------------------------------------------------------


def test_dapr_yaml_uses_only_keys_the_dapr_cli_knows(template: dict) -> None:
    assert set(template) <= TEMPLATE_TOP_KEYS
    assert template["version"] == 1
    assert set(template["common"]) <= TEMPLATE_SHARED_KEYS, set(template["common"]) - TEMPLATE_SHARED_KEYS
    for app in template["apps"]:
        unknown = set(app) - TEMPLATE_APP_ONLY_KEYS - TEMPLATE_SHARED_KEYS
        assert not unknown, f"{app.get('appID')}: {unknown}"
    for section in [template["common"], *template["apps"]]:
        if "env" in section:  # the CLI parses env as a map, not the docs' list form
            assert isinstance(section["env"], dict) and all(isinstance(v, str) for v in section["env"].values())
        if "appProtocol" in section:
            assert section["appProtocol"] in APP_PROTOCOLS


def test_dapr_yaml_runs_the_five_apps_on_distinct_ports(template: dict) -> None:
    apps = template["apps"]
    assert sorted(a["appID"] for a in apps) == sorted(APP_IDS)
    for app in apps:
        assert app["appDirPath"] and isinstance(app["command"], list) and app["command"]
        assert all(isinstance(part, str) for part in app["command"])
    ports = [a[k] for a in apps for k in PORT_KEYS if k in a]
    assert all(isinstance(p, int) and 0 < p < 65536 for p in ports)
    assert len(ports) == len(set(ports)), f"port used twice: {ports}"


def test_dapr_yaml_paths_exist_relative_to_where_the_cli_resolves_them(template: dict) -> None:
    common = template["common"]
    for path in common.get("resourcesPaths", []):
        assert (ROOT / path).is_dir(), path
    assert (ROOT / common["configFilePath"]).is_file()
    for app in template["apps"]:
        app_dir = ROOT / app["appDirPath"]
        assert app_dir.is_dir(), app["appID"]
        # Per-app paths are relative to appDirPath, not to the template.
        for path in app.get("resourcesPaths", []):
            assert (app_dir / path).is_dir(), f"{app['appID']}: {path}"
        if "configFilePath" in app:
            assert (app_dir / app["configFilePath"]).is_file(), app["appID"]
