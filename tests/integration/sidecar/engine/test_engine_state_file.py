"""A state file the sidecar cannot use (garbage bytes, or another schema version) stops
``python -m sidecar serve`` with a clear message and a non-zero exit, and is left exactly as it was."""

from __future__ import annotations

import hashlib
import json
import os
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest
from dapr.ext.workflow import WorkflowStatus

from tests.support.engine_harness import REPO, WAIT, eventually, unique


def serve(state: Path) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "sidecar", "serve", "--app", "alpha=0", "--state", str(state)],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=WAIT,
    )


def digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


pytestmark = pytest.mark.sidecar_only


def one_finished_then_stopped(make_cluster):  # type: ignore[no-untyped-def]
    """A sidecar that ran one ``clock`` workflow to completion, then stopped (its state file is complete)."""
    cluster = make_cluster(["alpha"])
    cluster.start_workers(("alpha", "a1"))
    client = cluster.client("alpha")
    instance_id = client.schedule_new_workflow("clock", input="kept", instance_id=unique("kept"))
    state = client.wait_for_workflow_completion(instance_id, timeout_in_seconds=WAIT)
    assert state.runtime_status == WorkflowStatus.COMPLETED
    cluster.engine.stop()
    return cluster, client, instance_id


def test_a_state_file_of_garbage_bytes_stops_serve_and_is_left_unchanged(tmp_path: Path):
    state = tmp_path / "state.db"
    state.write_bytes(os.urandom(8192))
    before = digest(state)
    result = serve(state)
    assert result.returncode != 0
    assert f"state file {state} is not a readable SQLite database" in result.stderr
    assert "It was left as it is" in result.stderr
    assert "ready;" not in result.stderr
    assert digest(state) == before


def test_a_state_file_of_another_schema_version_stops_serve_and_is_left_unchanged(make_cluster):
    cluster, _, instance_id = one_finished_then_stopped(make_cluster)
    state = cluster.engine.state
    with sqlite3.connect(state) as db:
        db.execute("UPDATE meta SET value = '99' WHERE key = 'schema_version'")
    db.close()  # the last connection checkpoints the WAL into the file
    before = digest(state)

    result = serve(state)
    assert result.returncode != 0
    assert f"state file {state} has schema version 99, this sidecar reads version 2" in result.stderr
    assert digest(state) == before
    with sqlite3.connect(state) as db:
        assert db.execute("SELECT value FROM meta WHERE key = 'schema_version'").fetchone() == ("99",)
        assert db.execute("SELECT count(*) FROM instances WHERE instance_id = ?", (instance_id,)).fetchone() == (1,)
    db.close()


def test_a_state_file_of_schema_version_1_is_upgraded_in_place_and_its_instances_kept(make_cluster):
    cluster, client, instance_id = one_finished_then_stopped(make_cluster)
    state = cluster.engine.state
    with sqlite3.connect(state) as db:  # what version 1 looked like: no incoming_history column
        db.execute("ALTER TABLE instances DROP COLUMN incoming_history")
        db.execute("UPDATE meta SET value = '1' WHERE key = 'schema_version'")
    db.close()

    cluster.engine.start()
    state_after = eventually(lambda: client.get_workflow_state(instance_id), what="the instance after the upgrade")
    assert (state_after.runtime_status, json.loads(state_after.serialized_output)["input"]) == (
        WorkflowStatus.COMPLETED,
        "kept",
    )
    with sqlite3.connect(state) as db:
        assert db.execute("SELECT value FROM meta WHERE key = 'schema_version'").fetchone() == ("2",)
    db.close()


def test_with_a_retention_policy_a_finished_instance_is_purged_and_a_running_one_kept(make_cluster, monkeypatch):
    monkeypatch.setenv("SIDECAR_RETENTION", "completed=1s")  # what `SIDECAR_RETENTION=... make run` passes on
    cluster = make_cluster(["alpha"])
    cluster.start_workers(("alpha", "a1"))
    client = cluster.client("alpha")
    done = client.schedule_new_workflow("clock", input="short", instance_id=unique("done"))
    assert client.wait_for_workflow_completion(done, timeout_in_seconds=WAIT).runtime_status == WorkflowStatus.COMPLETED
    waiting = client.schedule_new_workflow("wait_event", instance_id=unique("waiting"))
    client.wait_for_workflow_start(waiting, timeout_in_seconds=WAIT)
    eventually(lambda: client.get_workflow_state(done) is None, timeout=10)
    assert client.get_workflow_state(waiting).runtime_status == WorkflowStatus.RUNNING
    assert "finished instances are purged after: completed 1 s" in cluster.engine.log.read_text()
    assert "purged 1 finished instances older than their retention" in cluster.engine.log.read_text()
