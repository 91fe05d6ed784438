"""Failure injection for demos and end-to-end tests: the fault vocabulary, the ``faults`` table in the app's own
database (so a fault survives the crash it causes), and ``FaultInjector``, which stores faults and fires them.
Its HTTP API is ``common.fault_api`` (mounted only when FAULTS_ENABLED=true); activities fire faults through
``common.activity.run_activity``.

Modes, one fault per activity (a PUT replaces it), optionally limited to one ``order_id``:
  error         raise ``NonRetryableError`` (the SDK's retry policy gives up at once)
  transient     raise ``TransientFaultError`` (retried); ``count`` = failures before success, default 1
  delay         sleep ``delay_ms`` (default 1000) before the effect
  crash_before  ``os._exit(70)`` before the effect is committed
  crash_after   ``os._exit(70)`` after the effect is committed, before the result is returned
``count`` limits how many times a non-transient fault fires; without it, it fires every time until deleted.
A firing is counted in its own committed transaction before it acts, so a crash does not re-arm it.
"""

from __future__ import annotations

import asyncio
import logging
import os
import sys
from collections.abc import Awaitable, Callable, Iterable
from datetime import datetime
from typing import Annotated, Any, Literal

import msgspec
import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import insert

from common.contracts import NonRetryableError
from common.db import Database, created_at

log = logging.getLogger(__name__)

CRASH_EXIT_CODE = 70
DEFAULT_DELAY_MS = 1000
MODES = ("error", "transient", "delay", "crash_before", "crash_after")
_BEFORE_MODES = ("error", "transient", "delay", "crash_before")
_AFTER_MODES = ("crash_after",)

Mode = Literal["error", "transient", "delay", "crash_before", "crash_after"]


class TransientFaultError(Exception):
    """An injected failure that a retry will get past."""


class UnknownActivity(LookupError):
    """A fault was named for an activity this app does not host."""


class InvalidFault(ValueError):
    """A fault whose fields do not go together (e.g. delay_ms with a mode other than 'delay')."""


def faults_table(metadata: sa.MetaData) -> sa.Table:
    """Add ``faults`` to a service's MetaData. ``remaining`` NULL means unlimited."""
    return sa.Table("faults", metadata, *_columns())


def create_faults_table(op: Any) -> None:
    """The table as of a service's first migration (``op`` is ``alembic.op``). Frozen: the five 0001 migrations
    call it, so it must never change with the live table (``_columns``); a change there is a new revision."""
    op.create_table(
        "faults",
        sa.Column("activity", sa.Text, primary_key=True),
        sa.Column(
            "mode",
            sa.Text,
            sa.CheckConstraint(
                "mode IN ('error', 'transient', 'delay', 'crash_before', 'crash_after')", name="faults_mode_known"
            ),
            nullable=False,
        ),
        sa.Column("count", sa.Integer, nullable=True),
        sa.Column("remaining", sa.Integer, nullable=True),
        sa.Column("delay_ms", sa.Integer, nullable=True),
        sa.Column("order_id", sa.Text, nullable=True),
        sa.Column("fired", sa.Integer, nullable=False, server_default="0"),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()),
    )


def _columns() -> list[sa.Column[Any]]:
    return [
        sa.Column("activity", sa.Text, primary_key=True),
        sa.Column("mode", sa.Text, sa.CheckConstraint(f"mode IN {MODES}", name="faults_mode_known"), nullable=False),
        sa.Column("count", sa.Integer, nullable=True),
        sa.Column("remaining", sa.Integer, nullable=True),
        sa.Column("delay_ms", sa.Integer, nullable=True),
        sa.Column("order_id", sa.Text, nullable=True),
        sa.Column("fired", sa.Integer, nullable=False, server_default="0"),
        created_at(),
    ]


_FAULTS = faults_table(sa.MetaData())


class FaultSpec(msgspec.Struct, forbid_unknown_fields=True):
    """Body of ``PUT /faults/{activity}``."""

    mode: Mode
    count: Annotated[int, msgspec.Meta(ge=1, le=1000)] | None = None
    delay_ms: Annotated[int, msgspec.Meta(ge=0, le=60_000)] | None = None
    order_id: Annotated[str, msgspec.Meta(min_length=1, max_length=200)] | None = None


class Fault(msgspec.Struct):
    activity: str
    mode: str
    count: int | None
    remaining: int | None
    delay_ms: int | None
    order_id: str | None
    fired: int
    created_at: datetime


class FaultInjector:
    """Reads and fires the faults of one app. Disabled (``enabled=False``) it never touches the database.

    ``exit`` and ``sleep`` are injectable so tests can see a crash fire without losing their process.
    """

    def __init__(
        self,
        db: Database,
        activities: Iterable[str],
        *,
        enabled: bool,
        exit: Callable[[int], Any] = os._exit,
        sleep: Callable[[float], Awaitable[Any]] = asyncio.sleep,
    ) -> None:
        self.db = db
        self.activities = frozenset(activities)
        self.enabled = enabled
        self._exit = exit
        self._sleep = sleep

    async def before(self, activity: str, order_id: str | None) -> None:
        """Call first thing in an activity: fires error, transient, delay and crash_before faults."""
        fired = await self._fire(activity, order_id, _BEFORE_MODES)
        if fired is None:
            return
        mode, delay_ms = fired
        if mode == "error":
            raise NonRetryableError(f"injected fault: {activity} fails permanently")
        if mode == "transient":
            raise TransientFaultError(f"injected fault: {activity} fails transiently")
        if mode == "delay":
            await self._sleep((delay_ms if delay_ms is not None else DEFAULT_DELAY_MS) / 1000)
            return
        self._crash(activity, "before its effect is committed")

    async def after_commit(self, activity: str, order_id: str | None) -> None:
        """Call after the effect's transaction committed, before returning: fires crash_after faults."""
        if await self._fire(activity, order_id, _AFTER_MODES) is not None:
            self._crash(activity, "after its effect was committed")

    async def set(self, activity: str, spec: FaultSpec) -> Fault:
        self._check_activity(activity)
        if spec.delay_ms is not None and spec.mode != "delay":
            raise InvalidFault("delay_ms applies only to mode 'delay'")
        count = spec.count if spec.count is not None else (1 if spec.mode == "transient" else None)
        values = {
            "mode": spec.mode,
            "count": count,
            "remaining": count,
            "order_id": spec.order_id,
            "delay_ms": (spec.delay_ms if spec.delay_ms is not None else DEFAULT_DELAY_MS)
            if spec.mode == "delay"
            else None,
            "fired": 0,
            "created_at": sa.func.now(),
        }
        statement = (
            insert(_FAULTS)
            .values(activity=activity, **values)
            .on_conflict_do_update(index_elements=["activity"], set_=values)
            .returning(*_FAULTS.c)
        )
        async with self.db.transaction() as session:
            row = (await session.execute(statement)).one()
        log.warning("fault armed: %s %s", activity, _describe(row._mapping))
        return Fault(**row._mapping)

    async def list(self) -> list[Fault]:
        async with self.db.session() as session:
            rows = await session.execute(sa.select(_FAULTS).order_by(_FAULTS.c.activity))
        return [Fault(**row._mapping) for row in rows]

    async def clear(self, activity: str | None = None) -> None:
        statement = sa.delete(_FAULTS)
        if activity is not None:
            self._check_activity(activity)
            statement = statement.where(_FAULTS.c.activity == activity)
        async with self.db.transaction() as session:
            await session.execute(statement)
        log.warning("faults cleared: %s", activity or "all")

    async def _fire(self, activity: str, order_id: str | None, modes: tuple[str, ...]) -> tuple[str, int | None] | None:
        if not self.enabled:
            return None
        f = _FAULTS.c
        # One guarded UPDATE: concurrent activities cannot both consume the last remaining firing.
        statement = (
            sa.update(_FAULTS)
            .where(
                f.activity == activity,
                f.mode.in_(modes),
                sa.or_(f.remaining.is_(None), f.remaining > 0),
                sa.or_(f.order_id.is_(None), f.order_id == order_id),
            )
            .values(remaining=f.remaining - 1, fired=f.fired + 1)
            .returning(f.mode, f.delay_ms, f.remaining, f.order_id)
        )
        async with self.db.transaction() as session:
            row = (await session.execute(statement)).first()
        if row is None:
            return None
        log.warning(
            "!!! FAULT INJECTED !!! %s on %s for order %s (remaining: %s)",
            row.mode,
            activity,
            order_id,
            "unlimited" if row.remaining is None else row.remaining,
        )
        return row.mode, row.delay_ms

    def _crash(self, activity: str, when: str) -> None:
        log.critical("!!! FAULT INJECTED !!! crashing the process (exit %s) in %s %s", CRASH_EXIT_CODE, activity, when)
        for stream in (sys.stdout, sys.stderr):
            stream.flush()
        self._exit(CRASH_EXIT_CODE)

    def _check_activity(self, activity: str) -> None:
        if activity not in self.activities:
            raise UnknownActivity(f"no activity {activity!r} here; known: {', '.join(sorted(self.activities))}")


def _describe(row: Any) -> str:
    parts = [f"mode={row['mode']}"]
    for key in ("count", "delay_ms", "order_id"):
        if row[key] is not None:
            parts.append(f"{key}={row[key]}")
    return " ".join(parts)
