"""Databases as every app uses them: URL helpers, creating and dropping a database on a server, and pools and
sessions (one asyncpg pool per event loop; statements built by SQLAlchemy, run by ``common.fastdb``). Starting the
embedded server is ``common.embedded_db``; making an app's database ready (created, migrated) is ``common.migrate``.
Also the columns and the insert-once that the services' tables share.

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

from common import fastdb

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


class Database:
    """One database URL, one asyncpg pool per event loop (``common.fastdb``), created on first use in that loop.

    Needed because an app runs two loops: uvicorn's (HTTP handlers) and the workflow worker's, on its own
    thread (async activities). asyncpg connections belong to the loop that opened them, so sharing one
    pool between the loops breaks; share a ``Database`` instead.

        async with db.transaction() as session:   # commits on success, rolls back on error
            ...

    A "session" is a ``fastdb.Connection``: statements are SQLAlchemy Core, compiled once per shape and executed on
    asyncpg directly, with no pre-ping and no reset query per checkout (``common.fastdb`` says what that changes).
    SQLAlchemy's own execution path cost the apps about a third of their CPU per order (issue 18).
    """

    def __init__(self, url: str) -> None:
        self.url = url
        self._lock = threading.Lock()
        self._pools: dict[asyncio.AbstractEventLoop, asyncio.Future[asyncpg.Pool]] = {}

    @contextlib.asynccontextmanager
    async def session(self) -> AsyncIterator[fastdb.Connection]:
        """A connection from this loop's pool, for reads (``async with db.session()``); each statement is its own
        transaction."""
        async with (await self._pool()).acquire() as conn:
            yield fastdb.Connection(conn)

    @contextlib.asynccontextmanager
    async def transaction(self) -> AsyncIterator[fastdb.Connection]:
        """A connection inside one transaction: committed when the block ends, rolled back if it raises."""
        async with (await self._pool()).acquire() as conn, conn.transaction():
            yield fastdb.Connection(conn)

    async def dispose(self) -> None:
        """Close the running loop's pool (each loop must close its own)."""
        loop = asyncio.get_running_loop()
        with self._lock:
            creating = self._pools.pop(loop, None)
        if creating is not None:
            with contextlib.suppress(Exception):
                await (await creating).close()

    async def _pool(self) -> asyncpg.Pool:
        loop = asyncio.get_running_loop()
        with self._lock:
            # Forget pools of loops that are gone (the worker may replace its loop on reconnect).
            for stale in [lp for lp in self._pools if lp.is_closed()]:
                del self._pools[stale]
            creating = self._pools.get(loop)
            if creating is None:  # the first caller in this loop creates it; the others wait for the same pool
                creating = self._pools[loop] = loop.create_task(fastdb.create_pool(libpq_url(self.url)))
        try:
            return await asyncio.shield(creating)
        except Exception:
            with self._lock:  # PostgreSQL was not there: the next call tries again
                if self._pools.get(loop) is creating:
                    del self._pools[loop]
            raise


# --- what the services' tables share -------------------------------------------------------------------
# For the live tables (``tables.py``) only: a migration spells its columns out, so that it stays as it was
# written whatever changes here later.


def created_at() -> sa.Column[datetime]:
    """When the row was inserted, by the database's clock."""
    return sa.Column("created_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now())


def updated_at() -> sa.Column[datetime]:
    """When the row last changed: now() on insert; every UPDATE of the row sets it to now() as well."""
    return sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now())


async def insert_unless_present(session: fastdb.Connection, table: sa.Table, **values: Any) -> bool:
    """Insert a row unless one with its primary key exists; True if this call inserted it. A concurrent
    insert of the same key makes this wait for that transaction, and then see its row."""
    key = [column.name for column in table.primary_key.columns]
    inserted = await session.execute(
        insert(table).values(**values).on_conflict_do_nothing(index_elements=key).returning(*table.primary_key.columns)
    )
    return inserted.first() is not None


async def update_row(session: fastdb.Connection, table: sa.Table, where: sa.ColumnElement[bool], **values: Any) -> None:
    """UPDATE the rows ``where`` picks with ``values``, and their ``updated_at`` to now()."""
    await session.execute(sa.update(table).where(where).values(**values, updated_at=sa.func.now()))
