"""common.fastdb on a real PostgreSQL: SQLAlchemy Core statements executed on asyncpg (what every app's
``Database`` runs): results, JSONB both ways, an IN list, several rows at once, savepoints, transactions that roll
back, and a connection PostgreSQL dropped, which fails one statement and is replaced by the pool.
"""

from __future__ import annotations

import asyncpg
import pytest
import pytest_asyncio
import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import JSONB

from common import fastdb
from common.db import Database, insert_unless_present, libpq_url

# The test's own table, not a service's (which the layers would allow): it has just the column kinds fastdb must
# carry (a text key, an integer, a nullable JSONB), and a service's schema may change for reasons of its own that
# are no reason to change this test. `duplicates` pairs it with inventory's and payment's tables by shape alone.
metadata = sa.MetaData()
things = sa.Table(
    "things",
    metadata,
    sa.Column("id", sa.String, primary_key=True),
    sa.Column("n", sa.Integer, nullable=False),
    sa.Column("doc", JSONB, nullable=True),
)


@pytest_asyncio.fixture
async def db(database_factory):
    url = await database_factory("fastdb", "orchestrator:migrations")  # any migrated database will do
    conn = await asyncpg.connect(libpq_url(url))
    await conn.execute("CREATE TABLE things (id text PRIMARY KEY, n integer NOT NULL, doc jsonb)")
    await conn.close()
    database = Database(url)
    yield database
    await database.dispose()


async def test_core_statements_run_with_their_results_and_json_both_ways(db):
    async with db.transaction() as s:
        assert await insert_unless_present(s, things, id="a", n=1, doc={"k": [1, "x"]})
        assert not await insert_unless_present(s, things, id="a", n=9)
        await s.execute(sa.insert(things), [{"id": "b", "n": 2, "doc": None}, {"id": "c", "n": 3, "doc": {"z": 1}}])

    async with db.session() as s:
        row = (await s.execute(sa.select(things).where(things.c.id == "a"))).one()
        assert (row.id, row.n, row.doc) == ("a", 1, {"k": [1, "x"]})
        assert row._mapping == {"id": "a", "n": 1, "doc": {"k": [1, "x"]}}
        picked = await s.execute(
            sa.select(things.c.id).where(things.c.id.in_(["a", "c", "nope"])).order_by(things.c.id)
        )
        assert picked.scalars() == ["a", "c"]
        assert await s.scalar(sa.select(sa.func.count()).select_from(things)) == 3
        assert (await s.execute(sa.select(things).where(things.c.id == "nope"))).first() is None
    async with db.transaction() as s:
        assert (await s.execute(sa.update(things).where(things.c.n >= 2).values(n=things.c.n + 10))).rowcount == 2
        assert (await s.execute(sa.delete(things).where(things.c.id == "nope"))).rowcount == 0


async def test_the_same_statement_shape_is_compiled_once_and_takes_each_calls_values(db):
    first = fastdb.compile_statement(sa.select(things).where(things.c.id == "one"))
    second = fastdb.compile_statement(sa.select(things).where(things.c.id == "two"))
    assert first[0] == second[0] and first[1] == ["one"] and second[1] == ["two"]


async def test_a_failed_block_rolls_back_and_a_savepoint_keeps_the_rest(db):
    with pytest.raises(RuntimeError):
        async with db.transaction() as s:
            await s.execute(sa.insert(things).values(id="gone", n=1))
            raise RuntimeError("the use case failed")
    async with db.transaction() as s:
        await s.execute(sa.insert(things).values(id="kept", n=1))
        with pytest.raises(asyncpg.UniqueViolationError):
            async with s.begin_nested():
                await s.execute(sa.insert(things).values(id="kept", n=2))
    async with db.session() as s:
        assert (await s.execute(sa.select(things.c.id, things.c.n))).all() == [("kept", 1)]


async def test_a_connection_postgresql_dropped_fails_one_statement_and_the_pool_replaces_it(db):
    async with db.session() as s:
        pid = await s.scalar(sa.select(sa.func.pg_backend_pid()))
        async with db.session() as other:  # a second connection, to drop the first one from
            assert await other.scalar(sa.select(sa.func.pg_terminate_backend(pid)))
        # asyncpg's error, whichever it is by the time the statement runs (the close read or not yet).
        with pytest.raises((asyncpg.PostgresError, asyncpg.InterfaceError, asyncpg.InternalClientError)):
            await s.scalar(sa.select(sa.literal(1)))
    for _ in range(3):  # what the caller's retry does: the next checkouts get working connections
        async with db.transaction() as s:
            assert await s.scalar(sa.select(sa.func.pg_backend_pid())) != pid
