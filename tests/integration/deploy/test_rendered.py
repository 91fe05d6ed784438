"""deploy/ as a user applies it: each overlay rendered by kustomize (built from its Go module) and every object
checked offline, strictly, against the Kubernetes API's schemas and Dapr's CRDs (``devtools.k8s_schemas``); and what
the rendering must say for an apply to work: no placeholder, every Secret a pod or a Dapr component reads made by the
overlay, the trial's PostgreSQL holding every database the URLs name, production's secrets required, not invented.

Needs the tools of ``make k8s-tools`` (Go); without them these are skipped, and said so, unless REQUIRE_K8S_TOOLS=1
(``.ci/run`` sets it), which makes them fail instead.
"""

from __future__ import annotations

import base64
import copy
import shutil
from pathlib import Path
from typing import Any

import pytest
import yaml

from devtools.k8s import K8sTools, ToolsError, render
from devtools.k8s_schemas import Schemas, objects
from tests.support import REPO

DEPLOY = REPO / "deploy"
TRIAL = DEPLOY / "overlays" / "trial"
PROD = DEPLOY / "overlays" / "prod"
IMAGE = "dapr-saga-fulfillment:0.1.0"
PROD_SECRET_FILES = {
    "order-api.url": "postgresql+asyncpg://orders:s3cret@db.example.internal:5432/order_api",
    "payment.url": "postgresql+asyncpg://payment:s3cret@db.example.internal:5432/payment",
    "inventory.url": "postgresql+asyncpg://inventory:s3cret@db.example.internal:5432/inventory",
    "shipping.url": "postgresql+asyncpg://shipping:s3cret@db.example.internal:5432/shipping",
    "notification.url": "postgresql+asyncpg://notification:s3cret@db.example.internal:5432/notification",
    "workflowstore.conn": "host=db.example.internal user=dapr password=s3cret port=5432 database=dapr_workflows",
}


@pytest.fixture(scope="module")
def schemas(tools: K8sTools) -> Schemas:
    return Schemas.of(tools)


@pytest.fixture(scope="module")
def prod(tools: K8sTools, tmp_path_factory: pytest.TempPathFactory) -> list[dict[str, Any]]:
    """The prod overlay rendered as a user would after writing their secret files (in a copy of deploy/)."""
    copy_of_deploy = tmp_path_factory.mktemp("deploy") / "deploy"
    shutil.copytree(DEPLOY, copy_of_deploy, ignore=shutil.ignore_patterns("*.url", "*.conn"))
    for name, value in PROD_SECRET_FILES.items():
        (copy_of_deploy / "overlays" / "prod" / "secrets" / name).write_text(value)
    return list(objects(render(tools, copy_of_deploy / "overlays" / "prod")))


@pytest.fixture(scope="module")
def trial(tools: K8sTools) -> list[dict[str, Any]]:
    return list(objects(render(tools, TRIAL)))


def of_kind(rendered: list[dict[str, Any]], kind: str) -> dict[str, dict[str, Any]]:
    return {o["metadata"]["name"]: o for o in rendered if o["kind"] == kind}


def secret_values(secret: dict[str, Any]) -> dict[str, str]:
    return {k: base64.b64decode(v.replace("\n", "")).decode() for k, v in secret.get("data", {}).items()} | dict(
        secret.get("stringData", {})
    )


def test_every_object_of_every_overlay_is_valid_for_the_kubernetes_api_and_daprs_crds(schemas, trial, prod):
    for name, rendered in (("trial", trial), ("prod", prod)):
        failures = [str(f) for obj in rendered for f in schemas.check(obj)]
        assert failures == [], f"{name}: {failures}"
        kinds = {o["kind"] for o in rendered}
        assert {"Deployment", "Service", "Secret", "Component", "Configuration", "WorkflowAccessPolicy"} <= kinds


def test_base_renders_into_exactly_the_objects_written_down_and_each_overlay_adds_only_its_database(tools, trial, prod):
    written = sorted(
        (d["kind"], d["metadata"]["name"])
        for path in sorted((DEPLOY / "base").rglob("*.yaml"))
        for d in yaml.safe_load_all(path.read_text())
        if d and d["kind"] != "Kustomization"
    )
    base = sorted((o["kind"], o["metadata"]["name"]) for o in objects(render(tools, DEPLOY / "base")))
    assert base == written
    secrets = {("Secret", f"{name}-db") for name in ("order-api", "payment", "inventory", "shipping", "notification")}
    secrets.add(("Secret", "workflowstore-db"))
    postgres = {
        ("Secret", "postgres"),
        ("StatefulSet", "postgres"),
        ("Service", "postgres"),
        ("ConfigMap", "postgres-initdb"),
    }
    assert {(o["kind"], o["metadata"]["name"]) for o in prod} - set(base) == secrets
    assert {(o["kind"], o["metadata"]["name"]) for o in trial} - set(base) == secrets | postgres


def test_the_checker_catches_wrong_types_unknown_fields_bad_base64_and_an_empty_access_rule(schemas, trial):
    broken = copy.deepcopy(trial)
    deployments = [o for o in broken if o["kind"] == "Deployment"]
    deployments[0]["spec"]["replicas"] = "two"
    deployments[1]["spec"]["template"]["spec"]["containers"][0]["imagePullPolicyy"] = "Always"
    next(o for o in broken if o["kind"] == "Secret")["data"] = {"X": "not base64 ???"}
    next(o for o in broken if o["kind"] == "Component")["spec"]["typo"] = 1
    next(o for o in broken if o["kind"] == "WorkflowAccessPolicy")["spec"]["rules"][0] = {
        "callers": [{"appID": "order-api"}]
    }
    messages = "\n".join(str(f) for obj in broken for f in schemas.check(obj))
    assert "'two' is not of type 'integer'" in messages
    assert "'imagePullPolicyy' was unexpected" in messages
    assert "is not a 'byte'" in messages
    assert "'typo' was unexpected" in messages
    assert "at least one of workflows or activities must contain a rule" in messages
    assert len(messages.splitlines()) == 5


def test_nothing_rendered_holds_a_placeholder_or_an_unpinned_image(trial, prod):
    for rendered in (trial, prod):
        text = repr(rendered)
        for placeholder in ("CHANGE-ME", "example.com", "ghcr.io/example", ":latest"):
            assert placeholder not in text
        images = {c["image"] for d in of_kind(rendered, "Deployment").values() for c in _containers(d)}
        assert images == {IMAGE}


def test_every_secret_a_pod_or_the_workflow_store_reads_is_made_by_the_overlay(trial, prod):
    for rendered in (trial, prod):
        secrets = of_kind(rendered, "Secret")
        for deployment in of_kind(rendered, "Deployment").values():
            for container in _containers(deployment):
                for env in container.get("env", []):
                    ref = env.get("valueFrom", {}).get("secretKeyRef")
                    if ref:
                        assert ref["key"] in secret_values(secrets[ref["name"]]), (deployment["metadata"]["name"], ref)
        store = of_kind(rendered, "Component")["workflowstore"]
        ref = {m["name"]: m for m in store["spec"]["metadata"]}["connectionString"]["secretKeyRef"]
        assert "database=dapr_workflows" in secret_values(secrets[ref["name"]])[ref["key"]].split()


def test_the_trial_postgres_holds_every_database_the_urls_name_and_every_app_listens_on_the_pod(trial):
    (postgres,) = of_kind(trial, "StatefulSet").values()
    assert postgres["spec"]["volumeClaimTemplates"], "the trial database needs a volume of its own"
    init = of_kind(trial, "ConfigMap")["postgres-initdb"]["data"]["initdb.sql"]
    urls = [v for s in of_kind(trial, "Secret").values() for k, v in secret_values(s).items() if k == "DATABASE_URL"]
    assert len(urls) == 5
    for url in [*urls, "database=dapr_workflows"]:
        database = url.rsplit("/", 1)[-1].removeprefix("database=")
        assert f"CREATE DATABASE {database};" in init
    assert all("@postgres.shop.svc.cluster.local:5432/" in url for url in urls)
    assert of_kind(trial, "Service")["postgres"]["spec"]["ports"][0]["port"] == 5432
    for deployment in of_kind(trial, "Deployment").values():
        app = next(c for c in deployment["spec"]["template"]["spec"]["containers"] if c["name"] == "app")
        assert {e["name"]: e.get("value") for e in app["env"]}["APP_HOST"] == "0.0.0.0"


def test_prod_needs_the_users_secret_files_and_says_which_is_missing(tools: K8sTools, tmp_path: Path):
    copy_of_deploy = tmp_path / "deploy"
    shutil.copytree(DEPLOY, copy_of_deploy, ignore=shutil.ignore_patterns("*.url", "*.conn"))
    with pytest.raises(ToolsError, match=r"secrets/order-api\.url.*no such file"):
        render(tools, copy_of_deploy / "overlays" / "prod")


def test_prod_runs_two_replicas_traces_a_tenth_to_a_collector_and_keeps_signing(prod):
    for deployment in of_kind(prod, "Deployment").values():
        assert deployment["spec"]["replicas"] == 2
    config = of_kind(prod, "Configuration")["wfconfig"]
    assert config["spec"]["tracing"]["samplingRate"] == "0.1"
    assert config["spec"]["tracing"]["otel"]["endpointAddress"]
    assert {f["name"]: f["enabled"] for f in config["spec"]["features"]} == {"WorkflowHistorySigning": True}
    assert "postgres" not in of_kind(prod, "StatefulSet"), "prod brings its own PostgreSQL"


def _containers(deployment: dict[str, Any]) -> list[dict[str, Any]]:
    spec = deployment["spec"]["template"]["spec"]
    return [*spec.get("initContainers", []), *spec["containers"]]
