"""Rendered Kubernetes manifests checked offline, as strictly as ``kubectl apply`` checks them (an unknown field is an
error), against the Kubernetes API's own OpenAPI v3 documents and Dapr's CRD schemas (both from Go modules:
``devtools.k8s``). No cluster is involved.

The OpenAPI documents are JSON Schema with Kubernetes extensions; ``strict()`` turns one into a draft-4 schema
``jsonschema`` can check: ``additionalProperties: false`` wherever a schema lists ``properties`` (unless it keeps
unknown fields), int-or-string as integer|string, embedded resources typed, and the CEL rules it knows (only
Dapr's WorkflowAccessPolicy has one that matters here) as JSON Schema; any other CEL rule is named as unchecked.
``python -m devtools.k8s_schemas OVERLAY...`` renders each overlay and prints what fails (exit 1).
"""

from __future__ import annotations

import base64
import copy
import json
import sys
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml
from jsonschema import Draft4Validator, FormatChecker
from jsonschema.exceptions import ValidationError

from devtools.k8s import K8sTools, ToolsError, find, render

Key = tuple[str, str, str]  # (API group, version, kind); the core group is ""
OBJECT_META = "#/components/schemas/io.k8s.apimachinery.pkg.apis.meta.v1.ObjectMeta"


class _Loader(yaml.SafeLoader):
    """YAML as the API server reads it: ``2024-01-01`` stays a string, as it would in JSON."""


_Loader.yaml_implicit_resolvers = {
    first: [(tag, rx) for tag, rx in resolvers if tag != "tag:yaml.org,2002:timestamp"]
    for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
}

FORMATS = FormatChecker(formats=())  # the formats the API server itself checks, below


@FORMATS.checks("byte", raises=(ValueError,))
def _base64(value: object) -> bool:  # Secret.data, ConfigMap.binaryData
    if isinstance(value, str):  # as Go's decoder reads it: line breaks (kustomize wraps long values) are skipped
        base64.b64decode(value.replace("\n", "").replace("\r", ""), validate=True)
    return True


@FORMATS.checks("int32")
def _int32(value: object) -> bool:
    return not isinstance(value, int) or -(2**31) <= value < 2**31


@FORMATS.checks("int64")
def _int64(value: object) -> bool:
    return not isinstance(value, int) or -(2**63) <= value < 2**63


# CEL rules this checker knows, as JSON Schema (jsonschema cannot run CEL).
KNOWN_CEL: dict[str, dict[str, Any]] = {
    # Dapr's charts/dapr/crds/workflowaccesspolicy.yaml, on each of spec.rules
    "(has(self.workflows) && size(self.workflows) > 0) || (has(self.activities) && size(self.activities) > 0)": {
        "anyOf": [
            {"required": ["workflows"], "properties": {"workflows": {"minItems": 1}}},
            {"required": ["activities"], "properties": {"activities": {"minItems": 1}}},
        ]
    },
}


def strict(schema: Any, unchecked: set[str]) -> Any:
    """An OpenAPI v3 or CRD structural schema as a draft-4 JSON Schema that refuses unknown fields; the CEL rules
    it cannot express are added to ``unchecked``."""
    if not isinstance(schema, dict):
        return schema
    out: dict[str, Any] = {}
    for key, value in schema.items():
        if key in ("properties", "patternProperties", "definitions") and isinstance(value, dict):
            out[key] = {name: strict(sub, unchecked) for name, sub in value.items()}
        elif key in ("items", "allOf", "anyOf", "oneOf") and isinstance(value, list):
            out[key] = [strict(sub, unchecked) for sub in value]
        elif key in ("items", "additionalProperties", "not") and isinstance(value, dict):
            out[key] = strict(value, unchecked)
        else:
            out[key] = value  # a keyword whose value is data: type, enum, required, format, ...
    keeps_unknown = out.pop("x-kubernetes-preserve-unknown-fields", False)
    if out.pop("x-kubernetes-int-or-string", False):
        out.pop("type", None)
        out.setdefault("anyOf", [{"type": "integer"}, {"type": "string"}])
    if out.pop("x-kubernetes-embedded-resource", False) and "properties" in out:
        for name in ("apiVersion", "kind"):
            out["properties"].setdefault(name, {"type": "string"})
        out["properties"].setdefault("metadata", {"type": "object"})
    rules = []
    for rule in out.pop("x-kubernetes-validations", None) or []:
        text = " ".join(rule["rule"].split())
        if text in KNOWN_CEL:
            rules.append({**KNOWN_CEL[text], "description": "CEL: " + rule.get("message", text)})
        else:
            unchecked.add(text)
    if rules:
        out["allOf"] = [*out.get("allOf", []), *rules]
    if "properties" in out and "additionalProperties" not in out and not keeps_unknown:
        out["additionalProperties"] = False
    return out


@dataclass
class Failure:
    what: str  # Kind/name
    where: str  # a JSON path in the object
    message: str

    def __str__(self) -> str:
        return f"{self.what}: {self.where}: {self.message}"


@dataclass
class Schemas:
    """Every built-in kind of one Kubernetes release and every Dapr CRD, ready to check objects against."""

    components: dict[str, Any] = field(default_factory=dict)
    builtin: dict[Key, str] = field(default_factory=dict)  # key -> component name
    crds: dict[Key, dict[str, Any]] = field(default_factory=dict)
    unchecked: dict[Key, set[str]] = field(default_factory=dict)
    _validators: dict[Key, Draft4Validator] = field(default_factory=dict)

    @classmethod
    def load(cls, openapi_dir: Path, crd_files: Iterable[Path]) -> Schemas:
        schemas, builtin_unchecked = cls(), set[str]()
        for path in sorted(openapi_dir.glob("*.json")):
            for name, schema in json.loads(path.read_text()).get("components", {}).get("schemas", {}).items():
                schemas.components.setdefault(name, schema)
                for gvk in schema.get("x-kubernetes-group-version-kind", []):
                    schemas.builtin.setdefault((gvk["group"], gvk["version"], gvk["kind"]), name)
        schemas.components = {name: strict(s, builtin_unchecked) for name, s in schemas.components.items()}
        for key in schemas.builtin:
            schemas.unchecked[key] = builtin_unchecked
        for path in crd_files:
            for crd in yaml.load_all(path.read_text(), Loader=_Loader):
                if not crd or crd.get("kind") != "CustomResourceDefinition":
                    continue
                spec = crd["spec"]
                for version in spec["versions"]:
                    if not version.get("served", True):
                        continue
                    key = (spec["group"], version["name"], spec["names"]["kind"])
                    schemas.unchecked[key] = set()
                    body = strict(copy.deepcopy(version["schema"]["openAPIV3Schema"]), schemas.unchecked[key])
                    # A CRD says only `metadata: {type: object}`; the API server checks it as ObjectMeta.
                    body.setdefault("properties", {})["metadata"] = {"$ref": OBJECT_META}
                    schemas.crds[key] = body
        return schemas

    @classmethod
    def of(cls, tools: K8sTools) -> Schemas:
        return cls.load(tools.openapi_dir, sorted(tools.crd_dir.glob("*.yaml")))

    def check(self, obj: dict[str, Any]) -> list[Failure]:
        """What is wrong with one object (nothing: an empty list)."""
        api_version, kind = str(obj.get("apiVersion", "")), str(obj.get("kind", ""))
        what = f"{kind}/{(obj.get('metadata') or {}).get('name', '?')}"
        validator = self._validator(api_version, kind)
        if validator is None:
            return [Failure(what, ".", f"no schema for apiVersion {api_version!r} kind {kind!r}")]
        return [_failure(what, err) for err in sorted(validator.iter_errors(obj), key=lambda e: str(e.absolute_path))]

    def unchecked_rules(self, objects: Iterable[dict[str, Any]]) -> set[str]:
        """The CEL rules of these objects' kinds that were not checked."""
        return set().union(*(self.unchecked.get(_key(o), set()) for o in objects))

    def _validator(self, api_version: str, kind: str) -> Draft4Validator | None:
        key = _key({"apiVersion": api_version, "kind": kind})
        if key not in self._validators:
            if key in self.crds:
                body: dict[str, Any] = self.crds[key]
            elif key in self.builtin:
                body = {"$ref": f"#/components/schemas/{self.builtin[key]}"}
            else:
                return None
            identity = {
                "properties": {
                    "apiVersion": {"enum": [api_version]},
                    "kind": {"enum": [kind]},
                    "metadata": {"required": ["name"]},
                },
                "required": ["apiVersion", "kind", "metadata"],
            }
            # "#/components/schemas/X" resolves inside this one document: no resolver registry needed.
            root = {"allOf": [body, identity], "components": {"schemas": self.components}}
            self._validators[key] = Draft4Validator(root, format_checker=FORMATS)
        return self._validators[key]


def _key(obj: dict[str, Any]) -> Key:
    group, _, version = str(obj.get("apiVersion", "")).rpartition("/")
    return group, version, str(obj.get("kind", ""))


def _failure(what: str, err: ValidationError) -> Failure:
    """The deepest sub-error of an anyOf/oneOf/allOf (what a person wants to read), or a CEL rule's message."""
    while err.context and not str(_description(err)).startswith("CEL: "):
        err = max(err.context, key=lambda e: len(e.absolute_path))
    where = "".join(f"[{p}]" if isinstance(p, int) else f".{p}" for p in err.absolute_path) or "."
    description = _description(err)
    return Failure(what, where, description.removeprefix("CEL: ") if description.startswith("CEL: ") else err.message)


def _description(err: ValidationError) -> str:
    return str(err.schema.get("description", "")) if isinstance(err.schema, dict) else ""


def objects(text: str) -> Iterator[dict[str, Any]]:
    """The objects of a YAML stream as the API server gets them (``field: null`` is an absent field)."""
    for doc in yaml.load_all(text, Loader=_Loader):
        if doc is None:
            continue
        if not isinstance(doc, dict):
            raise ValueError(f"not a Kubernetes object: {doc!r:.80}")
        items = doc["items"] if str(doc.get("kind", "")).endswith("List") else [doc]
        yield from (_without_nulls(item) for item in items)


def _without_nulls(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _without_nulls(v) for k, v in value.items() if v is not None}
    if isinstance(value, list):
        return [_without_nulls(v) for v in value]
    return value


def main(argv: list[str]) -> int:
    tools = find()
    if tools is None or not argv:
        print("usage: python -m devtools.k8s_schemas OVERLAY... (after `make k8s-tools`)", file=sys.stderr)
        return 2
    schemas, failed = Schemas.of(tools), 0
    for overlay in argv:
        try:
            rendered = list(objects(render(tools, Path(overlay))))
        except ToolsError as err:
            print(f"{overlay}: {err}")
            failed += 1
            continue
        failures = [f for obj in rendered for f in schemas.check(obj)]
        for failure in failures:
            print(f"{overlay}: {failure}")
        for rule in sorted(schemas.unchecked_rules(rendered)):
            print(f"{overlay}: CEL rule not checked: {rule}")
        print(f"{overlay}: {len(rendered)} objects, {len(failures)} failure(s)")
        failed += bool(failures)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
