"""A service's database made ready: found or created (``prepare_database``) and migrated with Alembic
(``migrate``; ``run_alembic_env`` is the body of every service's ``migrations/env.py``).

Also a command, ``python -m common.migrate <package>``: what the Kubernetes init containers run before each app
(``deploy/``). It reads ``DATABASE_URL`` (the service's own database, which must exist) and upgrades it to the
latest revision. Replicas start at the same time: the migration transaction takes a PostgreSQL advisory lock,
so one migrates and the others then find nothing to do.
"""

from __future__ import annotations

import asyncio
import logging
import os
import sys
from collections.abc import Mapping
from typing import Any

from sqlalchemy import Connection, MetaData, text
from sqlalchemy.ext.asyncio import create_async_engine
from sqlalchemy.pool import NullPool

from common.db import async_url, database_name, ensure_database
from common.embedded_db import embedded_data_dir, start_embedded

# Alembic's own default; every service keeps its history in its own database under this name.
VERSION_TABLE = "alembic_version"
PACKAGES = ("orchestrator", "inventory", "payment", "shipping", "notification")
USAGE = f"usage: python -m common.migrate {{{'|'.join(PACKAGES)}}}  (reads DATABASE_URL)"


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
        server = env.get("POSTGRES_URL")
        if not server:
            server = await asyncio.to_thread(start_embedded, embedded_data_dir(env))
        await ensure_database(server, database_name(service))
        url = async_url(server, database_name(service))
    await migrate(url, migrations)
    return url


async def migrate(url: str, migrations: str, revision: str = "head") -> None:
    """Upgrade the database at ``url`` to ``revision`` with the Alembic scripts at ``migrations``."""
    from alembic import command
    from alembic.config import Config

    config = Config()
    config.set_main_option("script_location", migrations)
    config.attributes["url"] = async_url(url)
    # Alembic's async env.py calls asyncio.run(), which cannot nest in this loop: run it on a thread.
    await asyncio.to_thread(command.upgrade, config, revision)


def replace_check(op: Any, table: str, name: str, condition: str) -> None:
    """In a migration: the CHECK constraint ``name`` on ``table`` replaced by one of ``condition`` (PostgreSQL has
    no ALTER for a check's condition)."""
    op.drop_constraint(name, table, type_="check")
    op.create_check_constraint(name, table, condition)


def run_alembic_env(target_metadata: MetaData) -> None:
    """The body of every service's ``migrations/env.py``: online, async, URL handed over by ``migrate``."""
    from alembic import context

    url = context.config.attributes.get("url") or context.config.get_main_option("sqlalchemy.url")
    if not url:
        raise RuntimeError("no database URL: run migrations through common.migrate.migrate(url, migrations)")
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


def _run_sync_migrations(connection: Connection, target_metadata: MetaData) -> None:
    from alembic import context

    context.configure(connection=connection, target_metadata=target_metadata, version_table=VERSION_TABLE)
    with context.begin_transaction():
        # Two processes migrating one database at once would both run the DDL: the second waits here.
        connection.execute(text("SELECT pg_advisory_xact_lock(hashtext('common.migrate'))"))
        context.run_migrations()


def main(argv: list[str], env: dict[str, str] | None = None) -> int:
    env = dict(os.environ) if env is None else env
    if len(argv) != 1 or argv[0] not in PACKAGES:
        print(USAGE, file=sys.stderr)
        return 2
    url = env.get("DATABASE_URL")
    if not url:
        print(f"DATABASE_URL is not set: it must name the {argv[0]} database\n{USAGE}", file=sys.stderr)
        return 2
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    asyncio.run(migrate(url, f"{argv[0]}:migrations"))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
