"""``WorkflowAccessPolicy`` resources (``dapr.io/v1alpha1``), read and evaluated as daprd 1.18 does
(dapr/dapr ``pkg/acl/workflow``): a policy applies to the apps in its ``scopes`` (all apps when it has none);
once any policy applies to an app, a call from another app to schedule an activity or a workflow there is
allowed only if a rule names the caller and matches the name (a glob); calls within an app are never checked.

daprd learns the caller from its mTLS certificate, so without Sentry it denies every cross-app call. The
sidecar serves every app itself and knows which app's turn scheduled the work, so it enforces the same
rules locally, with daprd's denial (a task failure ``WorkflowAccessPolicyDenied``,
``access denied by workflow access policy``)."""

from __future__ import annotations

import fnmatch
import logging
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

log = logging.getLogger("sidecar")

KIND = "WorkflowAccessPolicy"
DENIED_TYPE = "WorkflowAccessPolicyDenied"
DENIED_MESSAGE = "access denied by workflow access policy"
ACTIVITY, WORKFLOW = "activity", "workflow"
SCHEDULE = "schedule"
_OPERATIONS = ("schedule", "terminate", "raise", "pause", "resume", "purge", "get", "rerun")


class PolicyError(ValueError):
    """A policy file that cannot be used; the message names the file and what is wrong."""


@dataclass(frozen=True)
class _Rule:
    callers: frozenset[str]
    grants: tuple[tuple[str, str, str], ...]  # (activity|workflow, operation, name glob)


@dataclass
class AccessPolicies:
    """The compiled policies, by the app they protect."""

    names: dict[str, list[str]] = field(default_factory=dict)  # app -> names of the policies that apply to it
    _rules: dict[str, list[_Rule]] = field(default_factory=dict)
    _everyone: list[tuple[str, list[_Rule]]] = field(default_factory=list)  # unscoped policies: (name, rules)

    def applies_to(self, app: str) -> bool:
        return app in self._rules or bool(self._everyone)

    def allows(self, caller: str, target: str, kind: str, name: str, operation: str = SCHEDULE) -> bool:
        if caller == target or not self.applies_to(target):
            return True  # self-calls are exempt: the policy is a cross-app gate
        rules = [*self._rules.get(target, []), *(r for _, rs in self._everyone for r in rs)]
        return any(
            caller in rule.callers and kind == k and operation == op and fnmatch.fnmatchcase(name, glob)
            for rule in rules
            for k, op, glob in rule.grants
        )


def load_policies(paths: Iterable[Path]) -> AccessPolicies:
    """Every WorkflowAccessPolicy in ``paths`` (files, or folders whose top-level ``*.yaml``/``*.yml`` files are
    read, as daprd reads a resources path); other kinds of resource are skipped."""
    out = AccessPolicies()
    for path in paths:
        if path.is_dir():
            files = sorted(p for p in path.iterdir() if p.suffix in (".yaml", ".yml") and p.is_file())
        elif path.is_file():
            files = [path]
        else:
            raise PolicyError(f"{path}: no such file or folder")
        for file in files:
            for doc in _documents(file):
                if doc.get("kind") == KIND:
                    _add(out, file, doc)
    return out


def _documents(file: Path) -> list[dict[str, Any]]:
    try:
        docs = list(yaml.safe_load_all(file.read_text()))
    except yaml.YAMLError as exc:
        raise PolicyError(f"{file}: not valid YAML ({exc})") from None
    return [d for d in docs if isinstance(d, dict)]


def _add(out: AccessPolicies, file: Path, doc: dict[str, Any]) -> None:
    name = str((doc.get("metadata") or {}).get("name") or "")
    if not name:
        raise PolicyError(f"{file}: a {KIND} needs metadata.name")
    if doc.get("apiVersion") != "dapr.io/v1alpha1":
        raise PolicyError(
            f"{file}: {KIND} {name!r} has apiVersion {doc.get('apiVersion')!r}; expected dapr.io/v1alpha1"
        )
    found = [_rule(file, name, r) for r in ((doc.get("spec") or {}).get("rules") or [])]
    rules = [r for r in found if r is not None]
    scopes = doc.get("scopes") or []
    if not scopes:
        out._everyone.append((name, rules))
    for app in scopes:
        out._rules.setdefault(str(app), []).extend(rules)
        out.names.setdefault(str(app), []).append(name)


def _rule(file: Path, policy: str, rule: dict[str, Any]) -> _Rule | None:
    callers = frozenset(str(c.get("appID", "")) for c in rule.get("callers") or [])
    if not callers:
        log.warning("%s: %s %r has a rule with no callers; skipped, as daprd skips it", file, KIND, policy)
        return None
    grants: list[tuple[str, str, str]] = []
    for wf in rule.get("workflows") or []:
        ops = wf.get("operations") or []
        if unknown := [op for op in ops if op not in _OPERATIONS]:
            raise PolicyError(
                f"{file}: {KIND} {policy!r}: unknown operation(s) {unknown}; one of {', '.join(_OPERATIONS)}"
            )
        grants.extend((WORKFLOW, op, str(wf.get("name", ""))) for op in ops)
    grants.extend((ACTIVITY, SCHEDULE, str(a.get("name", ""))) for a in rule.get("activities") or [])
    return _Rule(callers, tuple(grants)) if grants else None
