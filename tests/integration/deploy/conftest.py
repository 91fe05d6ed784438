"""What the deploy/ checks share: the Kubernetes tools of ``make k8s-tools`` (kustomize and the API schemas, built
from Go modules). Without them the checks are skipped, and said so, unless REQUIRE_K8S_TOOLS=1 (``.ci/run`` sets
it), which makes them fail instead."""

from __future__ import annotations

import os

import pytest

from devtools.k8s import K8sTools, find


@pytest.fixture(scope="session")
def tools() -> K8sTools:
    found = find()
    if found is None:
        if os.environ.get("REQUIRE_K8S_TOOLS") == "1":
            pytest.fail("REQUIRE_K8S_TOOLS=1 but kustomize and the schemas are missing: run `make k8s-tools`")
        pytest.skip("kustomize and the Kubernetes schemas are not installed: run `make k8s-tools` (needs Go)")
    return found
