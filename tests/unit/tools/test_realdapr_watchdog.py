"""The watchdog's decision on what a daprd's health and metadata endpoints said, recorded from the real daprd
1.18.2 (``recorded/daprd_metadata_1.18.2.json``: the order-api's daprd of a ``python -m realdapr run`` starting,
healthy, and while its app was restarting) and, for the wedge, the healthy record with what dapr/dapr 9070
describes (the worker connected, the workflow actor types gone from the table)."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import pytest

from realdapr.watchdog import Observation, verdict

RECORDED = json.loads((Path(__file__).parent / "recorded" / "daprd_metadata_1.18.2.json").read_text())


def recorded(name: str, app_up: bool | None = None) -> Observation:
    return Observation(RECORDED[name]["healthz"], copy.deepcopy(RECORDED[name]["metadata"]), app_up)


def wedged() -> Observation:
    seen = recorded("healthy")
    metadata: dict[str, Any] = seen.metadata or {}
    kept = [a for a in metadata["actors"] if not a["type"].endswith((".workflow", ".activity"))]
    metadata["actors"] = metadata["actorRuntime"]["activeActors"] = kept
    return seen


def test_a_healthy_daprd_with_its_worker_connected_and_its_actor_types_hosted_is_well() -> None:
    assert recorded("healthy").metadata["workflows"] == {"connectedWorkers": 1}  # type: ignore[index]
    assert verdict("order-api", recorded("healthy")) is None


def test_a_daprd_whose_app_is_restarting_hosts_no_actor_types_and_is_well() -> None:
    seen = recorded("app_restarting")
    assert seen.metadata is not None and "actors" not in seen.metadata and "workflows" not in seen.metadata
    assert verdict("order-api", seen) is None


def test_a_starting_daprd_is_unwell_by_its_health_endpoint() -> None:
    assert verdict("order-api", recorded("starting")) == "/v1.0/healthz answers 500"


def test_a_worker_connected_while_the_workflow_actor_type_is_not_hosted_is_the_wedge() -> None:
    reason = verdict("order-api", wedged())
    assert reason is not None
    assert "1 workflow worker of order-api connected" in reason
    assert "dapr.internal.default.order-api.workflow is not hosted" in reason
    assert "hosted: dapr.internal.default.order-api.retentioner" in reason


def test_a_daprd_that_does_not_answer_is_unwell() -> None:
    assert verdict("order-api", Observation(None, None)) == "/v1.0/healthz does not answer"
    assert verdict("order-api", Observation(204, None)) == "/v1.0/metadata does not answer"


@pytest.mark.parametrize(
    ("change", "reason"),
    [
        ({"placement": "placement: disconnected"}, "its actor runtime says placement: disconnected about placement"),
        ({"hostReady": False}, "its actor host is not ready"),
        ({"runtimeStatus": "INITIALIZING"}, "its actor runtime is INITIALIZING"),
    ],
)
def test_an_actor_runtime_without_placement_or_not_ready_is_unwell(change: dict[str, Any], reason: str) -> None:
    seen = recorded("healthy")
    assert seen.metadata is not None
    seen.metadata["actorRuntime"].update(change)
    assert verdict("order-api", seen) == reason


def test_the_actor_type_looked_for_is_the_apps_own_in_its_namespace() -> None:
    assert verdict("payment", recorded("healthy")) is not None  # order-api's types are not payment's
    assert verdict("order-api", recorded("healthy"), namespace="shop") is not None


def test_an_app_up_while_its_daprd_counts_no_worker_and_hosts_no_workflow_type_is_the_wedge_chaos_caught() -> None:
    # Recorded in a default 1,000-order chaos run on daprd 1.18.2: the order-api's worker stream was open on its
    # daprd's gRPC port, its /healthz answered 200, and daprd's metadata had neither workflows nor actors.
    seen = recorded("wedged", app_up=RECORDED["wedged"]["app_healthz"] == 200)
    metadata = seen.metadata or {}
    assert "workflows" not in metadata and "actors" not in metadata
    assert metadata["actorRuntime"] == {
        "runtimeStatus": "RUNNING",
        "hostReady": True,
        "placement": "placement: connected",
    }

    reason = verdict("order-api", seen)

    assert reason == (
        "order-api answers its health check, but daprd counts no workflow worker of it and hosts no "
        "dapr.internal.default.order-api.workflow"
    )


def test_the_same_metadata_while_the_app_is_down_or_unasked_is_well() -> None:
    assert verdict("order-api", recorded("wedged", app_up=False)) is None  # the app restarting: daprd is right
    assert verdict("order-api", recorded("wedged", app_up=None)) is None
    assert verdict("order-api", recorded("healthy", app_up=True)) is None
