"""Each service's Alembic history, applied to an empty database, produces exactly the tables its code uses
(``tables.py``): no missing or extra table, column, type, nullability, index or constraint difference that
Alembic's autogenerate would see. A change to ``tables.py`` without a migration fails here."""

from __future__ import annotations

import importlib

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy.ext.asyncio import create_async_engine
from sqlalchemy.pool import NullPool

SERVICES = ["orchestrator", "inventory", "payment", "shipping", "notification"]


def _differences(connection, metadata) -> list:
    context = MigrationContext.configure(connection, opts={"compare_type": True, "compare_server_default": True})
    # alembic_version is Alembic's own; it is in no service's metadata.
    return [d for d in compare_metadata(context, metadata) if "alembic_version" not in repr(d)]


@pytest.mark.parametrize("package", SERVICES)
async def test_the_migrations_of_a_service_produce_exactly_its_tables(database_factory, package: str):
    url = await database_factory(package, f"{package}:migrations")
    metadata = importlib.import_module(f"{package}.tables").metadata
    engine = create_async_engine(url, poolclass=NullPool)
    try:
        async with engine.connect() as connection:
            differences = await connection.run_sync(_differences, metadata)
    finally:
        await engine.dispose()
    assert differences == [], f"{package}: the migrations and tables.py differ: {differences}"
