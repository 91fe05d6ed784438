"""The apps' statements, built by SQLAlchemy and executed on asyncpg directly (issue 18: SQLAlchemy's execution path
was the largest part of the apps' CPU per order).

SQLAlchemy stays the statement builder (and the schema and migrations): a statement is compiled once per shape for
the asyncpg dialect, keyed by SQLAlchemy's own cache key, and each call only extracts its parameters; asyncpg
prepares each SQL text once per connection (its statement cache) and runs it on a pooled connection.

What changes against SQLAlchemy's pool: no pre-ping (a BEGIN, a ping and a ROLLBACK per checkout) and no reset query
on release (no session state is ever set, and every transaction has ended before its connection goes back). A
connection PostgreSQL closed (a restart) is dropped by the pool when asyncpg sees the close, and the next checkout
opens a new one; a statement caught in between fails with asyncpg's error, which the caller's retry covers (the
saga's retry policy for an activity, the client for a REST request), as it did with pre-ping on for a connection
dropped after its ping. Errors are asyncpg's (``asyncpg.PostgresError`` and its subclasses, e.g. ``RaiseError``
for a trigger's RAISE), not SQLAlchemy's ``DBAPIError``.

``Connection`` offers the slice of SQLAlchemy's ``AsyncConnection`` the apps use: ``execute`` (one row set, or
``executemany`` with a list of rows), ``scalar`` and ``begin_nested``; a ``Result`` has ``first``, ``one``, ``all``,
``scalar``, ``scalar_one``, ``scalars`` and ``rowcount``; a ``Row`` attribute access, indexing and ``_mapping``.
When traces are on (``common.telemetry``) each statement is a client span with ``db.system`` ``postgresql``.
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import AsyncIterator, Iterator
from typing import Any

import asyncpg
from sqlalchemy.dialects.postgresql.asyncpg import dialect as asyncpg_dialect
from sqlalchemy.sql.expression import Executable

from common import telemetry

_DIALECT = asyncpg_dialect()  # type: ignore[no-untyped-call]
# Compiled statements by their SQLAlchemy cache key. The apps build a few dozen shapes; the bound keeps a builder that
# made a new shape per call (it would be a bug) from growing it without end.
_CACHE: dict[Any, tuple[Any, dict[str, Any], bool]] = {}
_CACHE_MAX = 500
POOL_MAX = 24  # as SQLAlchemy's pool was: 16, and 8 more for bursts


class Row:
    """One row: ``row.column``, ``row[0]``, ``row._mapping`` (a dict), iteration over its values; equal to the tuple
    of its values."""

    __slots__ = ("_record",)

    def __init__(self, record: asyncpg.Record) -> None:
        self._record = record

    def __getattr__(self, name: str) -> Any:
        try:
            return self._record[name]
        except KeyError:
            raise AttributeError(name) from None

    def __getitem__(self, index: int) -> Any:
        return self._record[index]

    def __iter__(self) -> Iterator[Any]:
        return iter(self._record.values())

    @property
    def _mapping(self) -> dict[str, Any]:
        return dict(self._record.items())

    def __len__(self) -> int:
        return len(self._record)

    def __eq__(self, other: object) -> bool:  # as SQLAlchemy's rows: equal to the tuple of its values
        return tuple(self) == (tuple(other) if isinstance(other, Row) else other)

    __hash__ = None  # type: ignore[assignment]  # mutable comparisons, as a list's

    def __repr__(self) -> str:
        return repr(tuple(self))


class Result:
    """The rows a statement returned (none for one without RETURNING), and how many rows it touched."""

    def __init__(self, records: list[asyncpg.Record] | None, rowcount: int) -> None:
        self._rows = [Row(r) for r in records] if records is not None else []
        self.rowcount = rowcount

    def __iter__(self) -> Iterator[Row]:
        return iter(self._rows)

    def first(self) -> Row | None:
        return self._rows[0] if self._rows else None

    def one(self) -> Row:
        if len(self._rows) != 1:
            raise LookupError(f"expected one row, got {len(self._rows)}")
        return self._rows[0]

    def all(self) -> list[Row]:
        return list(self._rows)

    def scalar(self) -> Any:
        return self._rows[0][0] if self._rows else None

    def scalar_one(self) -> Any:
        return self.one()[0]

    def scalars(self) -> list[Any]:
        return [r[0] for r in self._rows]


def compile_statement(stmt: Executable, params: dict[str, Any] | None = None) -> tuple[str, list[Any], bool]:
    """SQL text with $n placeholders, its arguments (through SQLAlchemy's bind processors: JSON, enums), and
    whether it returns rows."""
    key = stmt._generate_cache_key()  # type: ignore[attr-defined]
    entry = _CACHE.get(key.key) if key is not None else None
    if entry is None:
        compiled = stmt.compile(dialect=_DIALECT, cache_key=key)  # type: ignore[attr-defined]
        returns = bool(compiled.returning) or bool(getattr(stmt, "is_select", False))
        entry = (compiled, compiled._bind_processors, returns)
        if key is not None:
            if len(_CACHE) >= _CACHE_MAX:
                _CACHE.clear()
            _CACHE[key.key] = entry
    compiled, processors, returns = entry
    values = compiled.construct_params(params, extracted_parameters=key.bindparams if key is not None else None)
    sql, names = compiled.string, compiled.positiontup
    if "POSTCOMPILE" in sql:  # an IN with a list: expanded per call
        expanded = compiled._process_parameters_for_postcompile(values)
        sql, names, values = expanded.statement, expanded.positiontup, expanded.parameters
        processors = {**processors, **expanded.processors}
    args = [processors[n](values[n]) if n in processors else values[n] for n in names]
    return sql, args, returns


class Connection:
    """One pooled asyncpg connection, with the slice of SQLAlchemy's ``AsyncConnection`` the apps use."""

    def __init__(self, conn: asyncpg.Connection) -> None:
        self._conn = conn

    async def execute(self, stmt: Executable, rows: list[dict[str, Any]] | None = None) -> Result:
        """Run ``stmt``; with ``rows``, once per row (``executemany``, e.g. an INSERT of several rows)."""
        if rows is not None:
            compiled = [compile_statement(stmt, r) for r in rows]
            with _span(compiled[0][0]):
                await self._conn.executemany(compiled[0][0], [c[1] for c in compiled])
            return Result(None, len(rows))
        sql, args, returns = compile_statement(stmt)
        with _span(sql):
            if returns:
                records = await self._conn.fetch(sql, *args)
                return Result(records, len(records))
            status = await self._conn.execute(sql, *args)
        count = status.rsplit(" ", 1)[-1]  # "UPDATE 1", "INSERT 0 1"
        return Result(None, int(count) if count.isdigit() else -1)

    async def scalar(self, stmt: Executable) -> Any:
        return (await self.execute(stmt)).scalar()

    @contextlib.asynccontextmanager
    async def begin_nested(self) -> AsyncIterator[None]:
        """A savepoint inside the caller's transaction: rolled back to if the block raises."""
        async with self._conn.transaction():
            yield


@contextlib.contextmanager
def _span(sql: str) -> Iterator[None]:
    """A client span for one statement when traces are on (what OpenTelemetry's SQLAlchemy instrumentation made)."""
    if not telemetry.enabled():
        yield
        return
    from opentelemetry import trace

    tracer = trace.get_tracer("common.fastdb")
    verb = sql.split(None, 1)[0].upper() if sql else "SQL"
    with tracer.start_as_current_span(
        verb, kind=trace.SpanKind.CLIENT, attributes={"db.system": "postgresql", "db.statement": sql}
    ):
        yield


async def _init(conn: asyncpg.Connection) -> None:
    """JSON and JSONB as SQLAlchemy's asyncpg dialect sets them up (binary; JSONB with its version byte): a bind
    processor has already made the JSON text, and a value read is parsed."""
    await conn.set_type_codec(
        "json", encoder=str.encode, decoder=lambda b: json.loads(b.decode()), schema="pg_catalog", format="binary"
    )
    await conn.set_type_codec(
        "jsonb",
        encoder=lambda s: b"\x01" + s.encode(),
        decoder=lambda b: json.loads(b[1:].decode()),
        schema="pg_catalog",
        format="binary",
    )


async def _no_reset(conn: asyncpg.Connection) -> None:
    """Nothing to reset: no session state is ever set, and every transaction ends before release."""


async def create_pool(url: str) -> asyncpg.Pool:
    """A pool on ``url`` (a ``postgresql://`` URL): connections open as they are needed, up to ``POOL_MAX``."""
    pool: asyncpg.Pool = await asyncpg.create_pool(url, min_size=1, max_size=POOL_MAX, init=_init, reset=_no_reset)
    return pool
