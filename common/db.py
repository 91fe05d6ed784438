"""Databases as every app uses them: URL helpers, creating and dropping a database on a server, and engines and
sessions (one engine per event loop). Starting the embedded server is ``common.embedded_db``; making an app's
database ready (created, migrated) is ``common.migrate``. Also the columns and the insert-once that the services'
tables share.

Boundary: knows PostgreSQL and SQLAlchemy; knows nothing about any service's tables.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import threading
from collections.abc import AsyncIterator
from datetime import datetime
from typing import Any

import asyncpg
import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.engine import URL, make_url
from sqlalchemy.ext import asyncio as sa_asyncio
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

log = logging.getLogger(__name__)

# --- URLs and databases --------------------------------------------------------------------------------


def database_name(service: str) -> str:
    """The database a service owns: its app id with dashes made SQL-friendly (``order-api`` → ``order_api``)."""
    return service.replace("-", "_")


def async_url(url: str, database: str | None = None) -> str:
    """``url`` as a SQLAlchemy asyncpg URL (``postgresql+asyncpg://``), optionally pointing at ``database``."""
    parsed = make_url(url).set(drivername="postgresql+asyncpg")
    if database is not None:
        parsed = parsed.set(database=database)
    return parsed.render_as_string(hide_password=False)


def libpq_url(url: str, database: str | None = None) -> str:
    """``url`` as a plain ``postgresql://`` URL (what asyncpg, psql and POSTGRES_URL use)."""
    parsed: URL = make_url(url).set(drivername="postgresql")
    if database is not None:
        parsed = parsed.set(database=database)
    return parsed.render_as_string(hide_password=False)


async def ensure_database(server_url: str, name: str) -> None:
    """Create database ``name`` on the server unless it exists. Safe when several apps start at once."""
    conn = await asyncpg.connect(libpq_url(server_url))
    try:
        # Serialises creators on this server; the duplicate_database catch covers creators that skip the lock.
        await conn.execute("SELECT pg_advisory_lock(hashtext('common.db.ensure_database'))")
        exists = await conn.fetchval("SELECT 1 FROM pg_database WHERE datname = $1", name)
        if not exists:
            log.info("creating database %s", name)
            with contextlib.suppress(
                asyncpg.exceptions.DuplicateDatabaseError, asyncpg.exceptions.UniqueViolationError
            ):
                await conn.execute(f'CREATE DATABASE "{name}"')
    finally:
        await conn.close()  # closing the session releases the advisory lock


async def drop_database(server_url: str, name: str) -> None:
    """Drop database ``name`` if it exists, disconnecting its sessions (used by tests)."""
    conn = await asyncpg.connect(libpq_url(server_url))
    try:
        await conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    finally:
        await conn.close()


# --- engines and sessions ------------------------------------------------------------------------------


def create_engine(url: str) -> AsyncEngine:
    """An asyncpg engine that survives a database restart (pre-ping). The pool keeps up to 16 connections (an
    HTTP loop at concurrency 16 then never opens and closes overflow connections per request), and lets 8 more
    open for bursts; connections open only as they are needed."""
    # Looked up at call time: when traces are on, common.telemetry has wrapped it to trace each engine's SQL.
    return sa_asyncio.create_async_engine(url, pool_pre_ping=True, pool_size=16, max_overflow=8)


class Database:
    """One database URL, one engine per event loop, created lazily on first use in that loop.

    Needed because an app runs two loops: uvicorn's (HTTP handlers) and the workflow worker's, on its own
    thread (async activities). asyncpg connections belong to the loop that opened them, so sharing one
    engine between the loops breaks; share a ``Database`` instead.

        async with db.transaction() as session:   # commits on success, rolls back on error
            ...

    A "session" here is SQLAlchemy Core's ``AsyncConnection``, not the ORM's ``AsyncSession``: every query is
    Core, and a connection costs less per transaction than a session on top of one (measured: 0.67 against
    0.75 ms of client CPU for one small UPDATE, without pre-ping).
    """

    def __init__(self, url: str) -> None:
        self.url = url
        self._lock = threading.Lock()
        self._by_loop: dict[asyncio.AbstractEventLoop, AsyncEngine] = {}

    @property
    def engine(self) -> AsyncEngine:
        return self._for_running_loop()

    def session(self) -> AsyncConnection:
        """A connection from this loop's pool, for reads (the caller closes it: ``async with db.session()``;
        what it did is rolled back then)."""
        return self._for_running_loop().connect()

    @contextlib.asynccontextmanager
    async def transaction(self) -> AsyncIterator[AsyncConnection]:
        """A connection inside one transaction: committed when the block ends, rolled back if it raises."""
        async with self._for_running_loop().begin() as connection:
            yield connection

    async def dispose(self) -> None:
        """Dispose of the running loop's engine (each loop must dispose of its own)."""
        loop = asyncio.get_running_loop()
        with self._lock:
            entry = self._by_loop.pop(loop, None)
        if entry is not None:
            await entry.dispose()

    def _for_running_loop(self) -> AsyncEngine:
        loop = asyncio.get_running_loop()
        with self._lock:
            # Forget engines of loops that are gone (the worker may replace its loop on reconnect).
            for stale in [lp for lp in self._by_loop if lp.is_closed()]:
                del self._by_loop[stale]
            if loop not in self._by_loop:
                self._by_loop[loop] = create_engine(self.url)
            return self._by_loop[loop]


# --- what the services' tables share -------------------------------------------------------------------
# For the live tables (``tables.py``) only: a migration spells its columns out, so that it stays as it was
# written whatever changes here later.


def created_at() -> sa.Column[datetime]:
    """When the row was inserted, by the database's clock."""
    return sa.Column("created_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now())


def updated_at() -> sa.Column[datetime]:
    """When the row last changed: now() on insert; every UPDATE of the row sets it to now() as well."""
    return sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now())


async def insert_unless_present(session: AsyncConnection, table: sa.Table, **values: Any) -> bool:
    """Insert a row unless one with its primary key exists; True if this call inserted it. A concurrent
    insert of the same key makes this wait for that transaction, and then see its row."""
    key = [column.name for column in table.primary_key.columns]
    inserted = await session.execute(
        insert(table).values(**values).on_conflict_do_nothing(index_elements=key).returning(*table.primary_key.columns)
    )
    return inserted.first() is not None


async def update_row(session: AsyncConnection, table: sa.Table, where: sa.ColumnElement[bool], **values: Any) -> None:
    """UPDATE the rows ``where`` picks with ``values``, and their ``updated_at`` to now()."""
    await session.execute(sa.update(table).where(where).values(**values, updated_at=sa.func.now()))
