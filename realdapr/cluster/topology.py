"""What a cluster run runs, read from deploy/'s rendered manifests (``kustomize build``): every Deployment whose
pod template has ``dapr.io/enabled`` (its replicas, app container command, port, environment with its Secrets and
ConfigMaps resolved, readiness probe, init containers, and the sidecar its annotations ask for), the PostgreSQL the
overlay deploys (its Service's port and names, its credentials Secret and its init SQL), and the Dapr resources
(Components, Configurations, Resiliency, WorkflowAccessPolicies). Pure: nothing starts here.

What a field of the manifests says that the cluster cannot do is an error (``TopologyError``), not a silent
difference: an env var from a field reference, a probe that is not an HTTP GET, a second app container, an unknown
``dapr.io/*`` annotation (``injector``). Where Kubernetes addresses a Service by DNS name, ``substitute`` puts the
cluster's own address.
"""

from __future__ import annotations

import base64
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from .injector import InjectorError, Sidecar

DAPR_KINDS = ("Component", "Configuration", "Resiliency", "WorkflowAccessPolicy")
POSTGRES_INIT = "/docker-entrypoint-initdb.d"


class TopologyError(ValueError):
    """The manifests say something the cluster run cannot honour; the message names the object and the field."""


@dataclass(frozen=True)
class Container:
    """One container of a pod template, as a process: its command, its environment, its port and readiness."""

    name: str
    command: list[str]
    env: dict[str, str]
    port: int | None = None
    readiness_path: str | None = None


@dataclass(frozen=True)
class App:
    """A Dapr-enabled Deployment: ``replicas`` pods of its app container and sidecar, after its init containers."""

    name: str
    replicas: int
    sidecar: Sidecar
    container: Container
    init: list[Container]
    service_port: int | None  # the port of the Service that selects its pods (None: no Service)


@dataclass(frozen=True)
class Database:
    """The overlay's PostgreSQL: the names it is reached by, its port, its superuser and its init SQL."""

    hostnames: list[str]
    port: int
    user: str
    password: str
    init_sql: list[str]


@dataclass(frozen=True)
class Topology:
    namespace: str
    apps: list[App]
    database: Database | None
    dapr_resources: list[dict[str, Any]] = field(default_factory=list)

    def app(self, name: str) -> App:
        for app in self.apps:
            if app.sidecar.app_id == name:
                return app
        raise KeyError(name)


def load(text: str) -> Topology:
    """The topology of a rendered YAML stream."""
    docs = [doc for doc in yaml.safe_load_all(text) if isinstance(doc, dict)]
    secrets = {d["metadata"]["name"]: _secret_data(d) for d in docs if d.get("kind") == "Secret"}
    maps = {
        d["metadata"]["name"]: {k: str(v) for k, v in (d.get("data") or {}).items()}
        for d in docs
        if d.get("kind") == "ConfigMap"
    }
    refs = _Refs(secrets, maps, [d for d in docs if d.get("kind") == "Service"])
    namespaces = {
        str(d.get("metadata", {}).get("namespace") or "default") for d in docs if d.get("kind") != "Namespace"
    }
    if len(namespaces) != 1:
        raise TopologyError(f"the manifests span namespaces {sorted(namespaces)}; the cluster runs one")
    namespace = namespaces.pop()
    apps, database = [], None
    for doc in docs:
        kind = doc.get("kind")
        if kind not in ("Deployment", "StatefulSet"):
            continue
        name = f"{kind}/{doc['metadata']['name']}"
        template = doc["spec"]["template"]
        annotations = (template.get("metadata") or {}).get("annotations") or {}
        try:
            sidecar = Sidecar.from_annotations(annotations, name)
        except InjectorError as err:
            raise TopologyError(str(err)) from None
        if sidecar.enabled:
            if kind != "Deployment":
                raise TopologyError(f"{name}: a Dapr-enabled workload must be a Deployment here")
            apps.append(_app(doc, name, sidecar, refs))
        elif _is_postgres(template):
            if database is not None:
                raise TopologyError(f"{name}: a second PostgreSQL; the cluster runs one database host")
            database = _database(doc, name, namespace, refs)
        else:
            raise TopologyError(f"{name}: neither a Dapr app nor PostgreSQL; the cluster does not know how to run it")
    resources = [_inline_secrets(d, secrets) for d in docs if d.get("kind") in DAPR_KINDS]
    return Topology(namespace, apps, database, resources)


def substitute(value: str, names: list[str], address: str) -> str:
    """``value`` with every DNS name in ``names`` (longest first) replaced by ``address``."""
    for name in sorted(names, key=len, reverse=True):
        value = value.replace(name, address)
    return value


def write_resources(topology: Topology, folder: Path, db_address: str) -> dict[str, Path]:
    """The Dapr resources into ``folder`` (Components with their secrets inlined and the database's names
    replaced by ``db_address``, Resiliency, access policies), each Configuration into a file of its own (daprd's
    ``--config`` takes a file). Returns the Configuration files by name."""
    names = topology.database.hostnames if topology.database else []
    folder.mkdir(parents=True, exist_ok=True)
    for stale in folder.glob("*.yaml"):
        stale.unlink()
    configs = {}
    for doc in topology.dapr_resources:
        text = substitute(yaml.safe_dump(doc, sort_keys=False), names, db_address)
        target = folder / f"{doc['kind'].lower()}-{doc['metadata']['name']}.yaml"
        if doc["kind"] == "Configuration":
            target = folder.parent / f"config-{doc['metadata']['name']}.yaml"
            configs[doc["metadata"]["name"]] = target
        target.write_text(text)
    return configs


@dataclass(frozen=True)
class _Refs:
    """What a workload's fields refer to: the Secrets' and the ConfigMaps' data by name, and the Services."""

    secrets: Mapping[str, dict[str, str]]
    maps: Mapping[str, dict[str, str]]
    services: list[dict[str, Any]]

    def service(self, template: dict[str, Any]) -> dict[str, Any] | None:
        """The first Service whose selector picks the pods of ``template``, if any."""
        labels = (template.get("metadata") or {}).get("labels") or {}
        return next((s for s in self.services if _selects(s, labels)), None)


def _app(doc: dict[str, Any], name: str, sidecar: Sidecar, refs: _Refs) -> App:
    spec = doc["spec"]["template"]["spec"]
    containers = spec.get("containers") or []
    if len(containers) != 1:
        raise TopologyError(f"{name}: {len(containers)} containers; the cluster runs one app container per pod")
    container = _container(containers[0], name, refs)
    init = [_container(c, name, refs) for c in spec.get("initContainers") or []]
    service = refs.service(doc["spec"]["template"])
    return App(
        doc["metadata"]["name"],
        int(doc["spec"].get("replicas", 1)),
        sidecar,
        container,
        init,
        _port(service) if service else None,
    )


def _container(raw: dict[str, Any], workload: str, refs: _Refs) -> Container:
    where = f"{workload} container {raw.get('name')}"
    command = [*(raw.get("command") or []), *(raw.get("args") or [])]
    if not command:
        raise TopologyError(f"{where}: no command (the image's entrypoint is not known here)")
    env: dict[str, str] = {}
    for source in raw.get("envFrom") or []:
        if "secretRef" in source:
            env.update(_lookup(refs.secrets, source["secretRef"]["name"], None, where))
        elif "configMapRef" in source:
            env.update(_lookup(refs.maps, source["configMapRef"]["name"], None, where))
        else:
            raise TopologyError(f"{where}: envFrom {sorted(source)} is not supported")
    for item in raw.get("env") or []:
        if "value" in item:
            env[item["name"]] = str(item["value"])
            continue
        ref = item.get("valueFrom") or {}
        kind = next((k for k in ("secretKeyRef", "configMapKeyRef") if k in ref), None)
        if kind is None:
            raise TopologyError(f"{where}: env {item['name']} comes from {sorted(ref)}, which the cluster cannot give")
        store = refs.secrets if kind == "secretKeyRef" else refs.maps
        key = str(ref[kind]["key"])
        env[item["name"]] = _lookup(store, ref[kind]["name"], key, where)[key]
    ports = {p.get("name"): int(p["containerPort"]) for p in raw.get("ports") or []}
    port = next(iter(ports.values()), None)
    readiness = None
    probe = raw.get("readinessProbe")
    if probe is not None:
        get = probe.get("httpGet")
        if get is None:
            raise TopologyError(f"{where}: a readiness probe that is not httpGet ({sorted(probe)})")
        probe_port = get.get("port")
        if (ports.get(probe_port) if isinstance(probe_port, str) else probe_port) != port:
            raise TopologyError(f"{where}: its readiness probe's port {probe_port} is not its container port")
        readiness = str(get.get("path", "/"))
    return Container(str(raw.get("name")), [str(c) for c in command], env, port, readiness)


def _is_postgres(template: dict[str, Any]) -> bool:
    containers = template.get("spec", {}).get("containers") or []
    return len(containers) == 1 and str(containers[0].get("image", "")).split(":")[0].endswith("postgres")


def _database(doc: dict[str, Any], name: str, namespace: str, refs: _Refs) -> Database:
    template = doc["spec"]["template"]
    raw = template["spec"]["containers"][0]
    # Its probes run pg_isready in the image; the cluster waits for the server itself (pg_ctl -w).
    bare = {k: v for k, v in raw.items() if not k.endswith("Probe")}
    env = _container({**bare, "command": ["postgres"]}, name, refs).env
    service = refs.service(template)
    if service is None:
        raise TopologyError(f"{name}: no Service selects the PostgreSQL pods")
    svc = service["metadata"]["name"]
    hostnames = [f"{svc}.{namespace}.svc.cluster.local", f"{svc}.{namespace}.svc", f"{svc}.{namespace}"]
    port = _port(service)
    init: list[str] = []
    volumes = {v["name"]: v for v in template["spec"].get("volumes") or []}
    for mount in raw.get("volumeMounts") or []:
        volume = volumes.get(mount["name"]) or {}
        if mount.get("mountPath") == POSTGRES_INIT and "configMap" in volume:
            files = _lookup(refs.maps, volume["configMap"]["name"], None, name)
            init += [files[key] for key in sorted(files) if key.endswith(".sql")]
    user, password = env.get("POSTGRES_USER", "postgres"), env.get("POSTGRES_PASSWORD", "")
    return Database(hostnames, port, user, password, init)


def _port(service: dict[str, Any]) -> int:
    """A Service's (first) port."""
    return int(service["spec"]["ports"][0]["port"])


def _selects(service: dict[str, Any], labels: Mapping[str, str]) -> bool:
    selector = (service.get("spec") or {}).get("selector") or {}
    return bool(selector) and all(labels.get(k) == v for k, v in selector.items())


def _secret_data(doc: dict[str, Any]) -> dict[str, str]:
    data = {k: base64.b64decode(v).decode() for k, v in (doc.get("data") or {}).items()}
    data.update({k: str(v) for k, v in (doc.get("stringData") or {}).items()})
    return data


def _lookup(store: Mapping[str, dict[str, str]], name: str, key: str | None, where: str) -> dict[str, str]:
    if name not in store:
        raise TopologyError(f"{where}: refers to {name!r}, which the manifests do not define")
    if key is not None and key not in store[name]:
        raise TopologyError(f"{where}: {name!r} has no key {key!r}")
    return store[name]


def _inline_secrets(doc: dict[str, Any], secrets: Mapping[str, dict[str, str]]) -> dict[str, Any]:
    """A Component's ``secretKeyRef`` metadata as plain values (daprd without Kubernetes has no secret store to
    ask); every other document as it is."""
    if doc.get("kind") != "Component":
        return doc
    copy = yaml.safe_load(yaml.safe_dump(doc))
    where = f"Component/{doc['metadata']['name']}"
    for item in copy["spec"].get("metadata") or []:
        ref = item.pop("secretKeyRef", None)
        if ref is not None:
            item["value"] = _lookup(secrets, ref["name"], ref["key"], where)[ref["key"]]
    copy.pop("auth", None)
    return dict(copy)
