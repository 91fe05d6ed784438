"""Whether the cluster tests (``realdapr.cluster``) can run here: skipped, with the reason, without root, Dapr with
sentry or kustomize; failed instead when REQUIRE_CLUSTER=1 (``.ci/run`` sets it: CI runs as root and provides both)."""

from __future__ import annotations

import os

import pytest

from realdapr.cluster.launch import why_not_here


def require_cluster() -> None:
    reason = why_not_here()
    if reason is None:
        return
    if os.environ.get("REQUIRE_CLUSTER") == "1":
        pytest.fail(f"REQUIRE_CLUSTER=1 but no cluster can run here: {reason}")
    pytest.skip(f"no cluster here: {reason}")
