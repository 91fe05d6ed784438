"""The state store component realdapr defines, as a run's resources use it: files only, nothing started."""

from __future__ import annotations

from pathlib import Path

import yaml

from realdapr.resources import state_store_yaml, write_resources
from sidecar.template import RunTemplate


def test_the_state_store_component_is_the_actor_store_a_run_points_at_its_own_database(tmp_path: Path) -> None:
    components = tmp_path / "components"
    components.mkdir()
    (components / "store.yaml").write_text(state_store_yaml("replaced by the run"))
    template = RunTemplate(tmp_path / "dapr.yaml", None, (), (components,))

    written = write_resources(template, tmp_path / "resources", "postgres://127.0.0.1:5432/dapr_workflows")

    store = yaml.safe_load((written / "store.yaml").read_text())
    assert store["spec"]["type"] == "state.postgresql"
    assert {m["name"]: m["value"] for m in store["spec"]["metadata"]} == {
        "connectionString": "postgres://127.0.0.1:5432/dapr_workflows",
        "actorStateStore": "true",
    }
