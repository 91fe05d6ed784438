"""The sidecar's durable state: one SQLite file (stdlib ``sqlite3``, WAL journal).

Every engine transition is one transaction; the engine acknowledges nothing to a client or worker
before that transaction has committed. The store knows rows, not workflow rules: the engine decides
what to write, and on start-up reads everything back with ``load()``.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .model import INSTANCE_COLUMNS

SCHEMA_VERSION = 2
# Version 1 lacked instances.incoming_history; opening such a file adds the column (nothing else changed).
_UPGRADES = {"1": "ALTER TABLE instances ADD COLUMN incoming_history BLOB"}
_APP_NAME = "dapr-workflow-sidecar"

_SCHEMA = """
CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE instances (
    app_id TEXT NOT NULL, instance_id TEXT NOT NULL,
    name TEXT NOT NULL, status INTEGER NOT NULL, generation INTEGER NOT NULL, execution_id TEXT NOT NULL,
    created REAL NOT NULL, updated REAL NOT NULL,
    input TEXT, output TEXT, custom_status TEXT, failure BLOB, parent BLOB,
    started INTEGER NOT NULL, suspended INTEGER NOT NULL, stalled INTEGER NOT NULL, completed INTEGER NOT NULL,
    incoming_history BLOB,
    PRIMARY KEY (app_id, instance_id)
);
CREATE TABLE history (
    app_id TEXT NOT NULL, instance_id TEXT NOT NULL, seq INTEGER NOT NULL, event BLOB NOT NULL,
    PRIMARY KEY (app_id, instance_id, seq)
);
CREATE TABLE inbox (
    id INTEGER PRIMARY KEY, app_id TEXT NOT NULL, instance_id TEXT NOT NULL,
    generation INTEGER, visible_at REAL NOT NULL, event BLOB NOT NULL
);
CREATE INDEX inbox_instance ON inbox (app_id, instance_id);
CREATE TABLE activities (
    id INTEGER PRIMARY KEY, target_app TEXT NOT NULL, source_app TEXT NOT NULL, instance_id TEXT NOT NULL,
    generation INTEGER NOT NULL, task_id INTEGER NOT NULL, request BLOB NOT NULL
);
"""


class StateError(Exception):
    """The state file cannot be used: corrupt, not a sidecar state file, or of another schema version.
    The message says which and what to do; the file is never reset silently."""


@dataclass
class Loaded:
    instances: list[dict[str, Any]] = field(default_factory=list)
    history: list[tuple[str, str, int, bytes]] = field(default_factory=list)
    inbox: list[tuple[int, str, str, int | None, float, bytes]] = field(default_factory=list)
    activities: list[tuple[int, str, str, str, int, int, bytes]] = field(default_factory=list)


class Store:
    def __init__(self, path: Path) -> None:
        self.path = path
        self._db: sqlite3.Connection | None = None
        self._next_id = 1

    def open(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        existed = self.path.exists() and self.path.stat().st_size > 0
        try:
            db = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False)
            db.execute("PRAGMA journal_mode=WAL")
            # NORMAL in WAL mode survives any process crash (SIGKILL included); only an OS crash or
            # power loss can drop the last commits. FULL would fsync every commit.
            db.execute("PRAGMA synchronous=NORMAL")
            tables = {r[0] for r in db.execute("SELECT name FROM sqlite_master WHERE type='table'")}
        except sqlite3.DatabaseError as exc:
            raise StateError(
                f"state file {self.path} is not a readable SQLite database ({exc}). It was left as it is: "
                f"move it away to start with empty state, or point --state at another file."
            ) from exc
        if not existed or not tables:
            db.executescript(_SCHEMA)
            db.executemany(
                "INSERT INTO meta VALUES (?, ?)", [("app", _APP_NAME), ("schema_version", str(SCHEMA_VERSION))]
            )
        else:
            self._check(db, tables)
        self._db = db
        row = db.execute(
            "SELECT max(m) FROM (SELECT max(id) AS m FROM inbox UNION ALL SELECT max(id) FROM activities)"
        ).fetchone()
        self._next_id = (row[0] or 0) + 1

    def _check(self, db: sqlite3.Connection, tables: set[str]) -> None:
        try:
            meta = dict(db.execute("SELECT key, value FROM meta").fetchall()) if "meta" in tables else {}
            result = db.execute("PRAGMA quick_check").fetchone()[0]
        except sqlite3.DatabaseError as exc:
            raise StateError(f"state file {self.path} is corrupt ({exc}); it was left as it is.") from exc
        if meta.get("app") != _APP_NAME:
            raise StateError(f"{self.path} is an SQLite file but not a sidecar state file; it was left as it is.")
        if result != "ok":
            raise StateError(f"state file {self.path} is corrupt (quick_check: {result}); it was left as it is.")
        upgrade = _UPGRADES.get(meta.get("schema_version", ""))
        if upgrade is not None:
            with db:  # one transaction: the column and the version move together
                db.execute("BEGIN")
                db.execute(upgrade)
                db.execute("UPDATE meta SET value = ? WHERE key = 'schema_version'", (str(SCHEMA_VERSION),))
            return
        if meta.get("schema_version") != str(SCHEMA_VERSION):
            raise StateError(
                f"state file {self.path} has schema version {meta.get('schema_version')}, this sidecar reads "
                f"version {SCHEMA_VERSION}. It was left as it is: use the sidecar version that wrote it, or move it "
                "away."
            )

    def close(self) -> None:
        if self._db is not None:
            self._db.close()
            self._db = None

    def new_id(self) -> int:
        """Row ids for inbox and activity rows are allocated here so the engine knows them before commit."""
        i = self._next_id
        self._next_id += 1
        return i

    def load(self) -> Loaded:
        """What the engine keeps in memory: the instances that have not finished (with their histories and
        inboxes) and the queued activities. Finished instances stay in the file (``load_instance``)."""
        db = self._require()
        out = Loaded()
        cur = db.execute(f"SELECT {', '.join(INSTANCE_COLUMNS)} FROM instances WHERE completed = 0 ORDER BY rowid")
        out.instances = [dict(zip(INSTANCE_COLUMNS, row, strict=True)) for row in cur]
        out.history = db.execute(
            "SELECT h.app_id, h.instance_id, h.seq, h.event FROM instances i JOIN history h "
            "ON h.app_id = i.app_id AND h.instance_id = i.instance_id WHERE i.completed = 0 "
            "ORDER BY h.app_id, h.instance_id, h.seq"
        ).fetchall()
        out.inbox = db.execute(
            "SELECT id, app_id, instance_id, generation, visible_at, event FROM inbox ORDER BY id"
        ).fetchall()
        out.activities = db.execute(
            "SELECT id, target_app, source_app, instance_id, generation, task_id, request FROM activities ORDER BY id"
        ).fetchall()
        return out

    def load_instance(self, app_id: str, instance_id: str) -> tuple[dict[str, Any], list[bytes]] | None:
        """One instance's row and history events, or None when the file has no such instance."""
        db = self._require()
        row = db.execute(
            f"SELECT {', '.join(INSTANCE_COLUMNS)} FROM instances WHERE app_id = ? AND instance_id = ?",
            (app_id, instance_id),
        ).fetchone()
        if row is None:
            return None
        history = db.execute(
            "SELECT event FROM history WHERE app_id = ? AND instance_id = ? ORDER BY seq", (app_id, instance_id)
        ).fetchall()
        return dict(zip(INSTANCE_COLUMNS, row, strict=True)), [h[0] for h in history]

    def list_ids(self, app_id: str, after: int, limit: int) -> list[tuple[int, str]]:
        """(creation number, instance ID) of the app's instances created after ``after``, oldest first; the
        creation number is the row's rowid, which an upsert keeps, so a reused ID keeps its place."""
        sql = "SELECT rowid, instance_id FROM instances WHERE app_id = ? AND rowid > ? ORDER BY rowid"
        args: tuple[Any, ...] = (app_id, after)
        if limit:
            sql, args = sql + " LIMIT ?", (*args, limit)
        return self._require().execute(sql, args).fetchall()

    def finished_before(self, cutoffs: dict[int, float], limit: int) -> list[tuple[str, str]]:
        """Keys of finished instances whose status has a cutoff and that last changed before it, oldest first."""
        if not cutoffs:
            return []
        where = " OR ".join("(status = ? AND updated < ?)" for _ in cutoffs)
        args = [v for status, cutoff in cutoffs.items() for v in (status, cutoff)]
        return (
            self._require()
            .execute(
                f"SELECT app_id, instance_id FROM instances WHERE completed = 1 AND ({where}) ORDER BY updated LIMIT ?",
                (*args, limit),
            )
            .fetchall()
        )

    def _require(self) -> sqlite3.Connection:
        if self._db is None:
            raise RuntimeError("store is not open")
        return self._db

    def transaction(self) -> Tx:
        return Tx(self._require())


class Tx:
    """Collects the writes of one engine transition and commits them at once."""

    def __init__(self, db: sqlite3.Connection) -> None:
        self._db = db
        self._ops: list[tuple[str, Any]] = []

    def put_instance(self, row: dict[str, Any]) -> None:
        cols = ", ".join(INSTANCE_COLUMNS)
        marks = ", ".join("?" for _ in INSTANCE_COLUMNS)
        updates = ", ".join(f"{c}=excluded.{c}" for c in INSTANCE_COLUMNS[2:])
        # An upsert, not INSERT OR REPLACE: the row keeps its rowid, so rowid order is creation order (what
        # ListInstanceIDs answers in, as daprd lists its state store's rows).
        self._ops.append(
            (
                f"INSERT INTO instances ({cols}) VALUES ({marks}) ON CONFLICT (app_id, instance_id) DO UPDATE "
                f"SET {updates}",
                tuple(row[c] for c in INSTANCE_COLUMNS),
            )
        )

    def delete_instance(self, app_id: str, instance_id: str) -> None:
        key = (app_id, instance_id)
        self._ops.append(("DELETE FROM instances WHERE app_id=? AND instance_id=?", key))
        self.clear_history(app_id, instance_id)
        self._ops.append(("DELETE FROM inbox WHERE app_id=? AND instance_id=?", key))

    def clear_history(self, app_id: str, instance_id: str) -> None:
        self._ops.append(("DELETE FROM history WHERE app_id=? AND instance_id=?", (app_id, instance_id)))

    def append_history(self, app_id: str, instance_id: str, first_seq: int, events: Iterable[bytes]) -> None:
        rows = [(app_id, instance_id, first_seq + i, e) for i, e in enumerate(events)]
        if rows:
            self._ops.append(("many:INSERT INTO history VALUES (?, ?, ?, ?)", rows))

    def add_inbox(
        self, row_id: int, app_id: str, instance_id: str, generation: int | None, visible_at: float, event: bytes
    ) -> None:
        self._ops.append(
            (
                "INSERT INTO inbox VALUES (?, ?, ?, ?, ?, ?)",
                (row_id, app_id, instance_id, generation, visible_at, event),
            )
        )

    def delete_inbox(self, ids: Iterable[int]) -> None:
        rows = [(i,) for i in ids]
        if rows:
            self._ops.append(("many:DELETE FROM inbox WHERE id=?", rows))

    def clear_inbox(self, app_id: str, instance_id: str) -> None:
        self._ops.append(("DELETE FROM inbox WHERE app_id=? AND instance_id=?", (app_id, instance_id)))

    def add_activity(
        self,
        row_id: int,
        target_app: str,
        source_app: str,
        instance_id: str,
        generation: int,
        task_id: int,
        request: bytes,
    ) -> None:
        self._ops.append(
            (
                "INSERT INTO activities VALUES (?, ?, ?, ?, ?, ?, ?)",
                (row_id, target_app, source_app, instance_id, generation, task_id, request),
            )
        )

    def delete_activity(self, row_id: int) -> None:
        self._ops.append(("DELETE FROM activities WHERE id=?", (row_id,)))

    def commit(self) -> None:
        if not self._ops:
            return
        db = self._db
        db.execute("BEGIN")
        try:
            for sql, args in self._ops:
                if sql.startswith("many:"):
                    db.executemany(sql[5:], args)
                else:
                    db.execute(sql, args)
            db.execute("COMMIT")
        except BaseException:
            db.execute("ROLLBACK")
            raise
        finally:
            self._ops = []
