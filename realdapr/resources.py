"""The Dapr resources of a real-Dapr run, written before anything starts: the template's components with the
workflow actor state store pointed at its own database, its Configuration, and the one definition of that state
store component that runs without a template (the engine tests, ``bench.engines``) write."""

from __future__ import annotations

import logging
import shutil
import socket
from pathlib import Path
from typing import Any

import httpx
import yaml

from sidecar.template import RunTemplate

from . import RunError

log = logging.getLogger("realdapr")

# The database, on POSTGRES_URL, of the workflow actor state store: Dapr's own, never a service's.
WORKFLOW_DB = "dapr_workflows"
_ACTOR_STORE_FLAG = "actorStateStore"


def state_store_yaml(connection_string: str) -> str:
    """The workflow actor state store component (as ``components/workflowstore.yaml``, without its scopes): a
    ``state.postgresql`` v2 store on ``connection_string``, flagged as the actor state store."""
    component = {
        "apiVersion": "dapr.io/v1alpha1",
        "kind": "Component",
        "metadata": {"name": "workflowstore"},
        "spec": {
            "type": "state.postgresql",
            "version": "v2",
            "metadata": [
                {"name": "connectionString", "value": connection_string},
                {"name": _ACTOR_STORE_FLAG, "value": "true"},
            ],
        },
    }
    return yaml.safe_dump(component, sort_keys=False)


def write_resources(template: RunTemplate, target: Path, store_url: str) -> Path:
    """Copy the template's resources into ``target``, pointing the actor state store at ``store_url``.

    Raises RunError when no component is an actor state store: daprd would start, but no workflow could run.
    """
    if target.exists():
        shutil.rmtree(target)
    target.mkdir(parents=True)
    stores = 0
    for folder in template.resources_paths:
        if not folder.is_dir():
            raise RunError(f"{template.path}: resources folder {folder} does not exist")
        # daprd loads only the top level of a resources folder, and so does this copy.
        for file in sorted(folder.glob("*.y*ml")):
            docs = [doc for doc in yaml.safe_load_all(file.read_text()) if doc]
            for doc in docs:
                if _is_actor_store(doc):
                    _set_metadata(doc, "connectionString", store_url)
                    stores += 1
            (target / file.name).write_text(yaml.safe_dump_all(docs, sort_keys=False))
    if stores != 1:
        raise RunError(
            f"{template.path}: the resources must hold exactly one state store with {_ACTOR_STORE_FLAG} "
            f'"true" (found {stores}); workflows need one, shared by every app'
        )
    return target


# Every daprd of a run gets the same Configuration: with signing on one app and off on another, a cross-app
# activity result arrives without the attestation the caller requires, and its workflow fails as tampered.
HISTORY_SIGNING = "WorkflowHistorySigning"


def write_config(template: RunTemplate, target: Path, signing: bool = False) -> Path | None:
    """Copy the template's Configuration into ``target``, without the Zipkin exporter when nothing listens at
    its endpoint (``dapr init`` starts Zipkin; without it daprd logs a failed export every few seconds), and with
    ``signing`` the ``WorkflowHistorySigning`` feature on. The template's own file stays as the Dapr CLI loads it:
    daprd refuses signing without mTLS, which ``dapr run -f`` does not have."""
    if template.config_file is None and not signing:
        return None
    doc: dict[str, Any] = {"apiVersion": "dapr.io/v1alpha1", "kind": "Configuration", "metadata": {"name": "run"}}
    if template.config_file is not None:
        if not template.config_file.is_file():
            raise RunError(f"{template.path}: configFilePath {template.config_file} does not exist")
        doc = yaml.safe_load(template.config_file.read_text()) or doc
    spec = doc.setdefault("spec", {}) or {}
    doc["spec"] = spec
    tracing = spec.get("tracing") or {}
    endpoint = (tracing.get("zipkin") or {}).get("endpointAddress")
    if endpoint and not _listening(endpoint):
        log.info("no Zipkin at %s: daprd will not export traces", endpoint)
        del tracing["zipkin"]
    if signing:
        features = [f for f in spec.get("features") or [] if f.get("name") != HISTORY_SIGNING]
        spec["features"] = [*features, {"name": HISTORY_SIGNING, "enabled": True}]
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text(yaml.safe_dump(doc, sort_keys=False))
    return target


def policy_folders(template: RunTemplate, given: list[Path] | None) -> list[Path]:
    """The folders of ``WorkflowAccessPolicy`` files a run loads: ``given``, else the ``access-policies`` folder in
    any of the template's resources folders (``components/access-policies`` for this repository's dapr.yaml, which
    lists only ``./components``: the Dapr CLI has no mTLS, and a policy loaded without it denies every caller).
    daprd loads only the top level of each resources path, so each one becomes a ``--resources-path`` of its own."""
    if given is not None:
        for folder in given:
            if not folder.is_dir():
                raise RunError(f"--policies {folder}: no such folder")
        return [folder.resolve() for folder in given]
    return [folder / "access-policies" for folder in template.resources_paths if (folder / "access-policies").is_dir()]


def _listening(url: str) -> bool:
    parsed = httpx.URL(url)
    try:
        with socket.create_connection((parsed.host, parsed.port or 80), timeout=1):
            return True
    except OSError:
        return False


def _is_actor_store(doc: dict[str, Any]) -> bool:
    if doc.get("kind") != "Component" or not str(doc.get("spec", {}).get("type", "")).startswith("state."):
        return False
    return any(
        m.get("name") == _ACTOR_STORE_FLAG and str(m.get("value")).lower() == "true"
        for m in doc["spec"].get("metadata") or []
    )


def _set_metadata(doc: dict[str, Any], name: str, value: str) -> None:
    items = doc["spec"].setdefault("metadata", [])
    items[:] = [m for m in items if m.get("name") != name] + [{"name": name, "value": value}]
