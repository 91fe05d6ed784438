"""The instance row and the state file's table agree; timers wake an instance once, at the earliest time; retention
policies read as daprd reads them."""

from __future__ import annotations

import dataclasses
import sqlite3
from pathlib import Path

import pytest

from sidecar.model import CANCELED, COMPLETED, FAILED, INSTANCE_COLUMNS, TERMINATED, Instance
from sidecar.retention import RetentionError, RetentionPolicy, parse_duration
from sidecar.store import Store
from sidecar.timers import MAX_ARM, ManualClock, Timers


def test_the_instances_table_has_exactly_the_instance_columns(tmp_path: Path) -> None:
    store = Store(tmp_path / "state.db")
    store.open()
    store.close()
    with sqlite3.connect(tmp_path / "state.db") as db:
        table = [row[1] for row in db.execute("PRAGMA table_info(instances)")]
    assert tuple(table) == INSTANCE_COLUMNS
    assert set(INSTANCE_COLUMNS) <= {f.name for f in dataclasses.fields(Instance)}


def test_an_instance_survives_its_row() -> None:
    inst = Instance(
        "orders",
        "o-1",
        name="saga",
        status=2,
        generation=3,
        execution_id="e",
        created=1.5,
        updated=2.5,
        input="i",
        output="o",
        custom_status="c",
        failure=b"f",
        parent=b"p",
        started=True,
        suspended=False,
        stalled=True,
        completed=False,
        incoming_history=b"h",
    )
    row = inst.row()
    assert row["started"] == 1 and row["stalled"] == 1 and row["suspended"] == 0
    assert Instance.from_row(row) == inst


def test_timers_wake_once_at_the_earliest_time_asked() -> None:
    clock = ManualClock(100.0)
    woken: list[tuple[str, float]] = []
    timers = Timers(clock, lambda key: woken.append((key[1], clock.now())))
    timers.arm(("a", "late"), 130.0)
    timers.arm(("a", "late"), 160.0)  # later than what is armed: the earlier wake-up covers it
    timers.arm(("a", "soon"), 110.0)
    clock.advance(9.0)
    assert woken == []
    clock.advance(60.0)
    assert [key for key, _ in woken] == ["soon", "late"]
    assert woken[0][1] >= 110.0 and woken[1][1] >= 130.0


def test_a_far_timer_is_armed_in_steps() -> None:
    clock = ManualClock(0.0)
    woken: list[float] = []
    timers = Timers(clock, lambda key: woken.append(clock.now()))
    timers.arm(("a", "far"), 10 * MAX_ARM)
    clock.advance(MAX_ARM + 1)
    assert len(woken) == 1 and woken[0] < 2 * MAX_ARM  # the engine re-arms what is still due later


def test_retention_policies_read_as_daprd_reads_them() -> None:
    assert parse_duration("1h30m") == 5400 and parse_duration("500ms") == 0.5 and parse_duration("0") == 0
    assert RetentionPolicy.parse("72h").by_status == dict.fromkeys((COMPLETED, FAILED, TERMINATED, CANCELED), 259200.0)
    policy = RetentionPolicy.parse("completed=1m, failed=720h")
    assert policy.by_status == {COMPLETED: 60.0, FAILED: 2592000.0}
    assert RetentionPolicy.parse("completed=1m,anyTerminal=1h").by_status[TERMINATED] == 3600.0
    assert policy.sweep_interval == 15.0
    for bad in ("", "72", "1d", "h", "done=1h", "completed=soon"):
        with pytest.raises(RetentionError):
            RetentionPolicy.parse(bad)
