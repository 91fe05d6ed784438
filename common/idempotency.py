"""Idempotency lives in the data: a ``processed_requests`` row per idempotency key, written in the same
transaction as the effect it guards, so a repeated activity returns the stored result instead of acting twice.

Boundary: SQLAlchemy Core on the caller's session; knows nothing about what the effect is.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Awaitable, Callable
from typing import Any, Protocol, TypeVar

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import JSONB, insert

from common.contracts import Contract
from common.db import Database, created_at
from common.fastdb import Connection

TABLE_NAME = "processed_requests"
R = TypeVar("R", bound=Contract)


class KeyedRequest(Protocol):
    @property
    def idempotency_key(self) -> str: ...

    def model_dump(self) -> dict[str, Any]: ...


class IdempotencyConflict(Exception):
    """The key was already used for a different request: a caller bug, never retried into success."""


def processed_requests_table(metadata: sa.MetaData) -> sa.Table:
    """Add ``processed_requests`` to a service's MetaData. ``response`` is NULL only inside the claiming
    transaction (claim first, effect next, response last), so other sessions never see it NULL."""
    return sa.Table(
        TABLE_NAME,
        metadata,
        sa.Column("idempotency_key", sa.Text, primary_key=True),
        sa.Column("request_hash", sa.Text, nullable=False),
        sa.Column("response", JSONB, nullable=True),
        created_at(),
    )


def create_processed_requests(op: Any) -> None:
    """The table as of a service's first migration (``op`` is ``alembic.op``). Later changes need new revisions."""
    op.create_table(
        TABLE_NAME,
        sa.Column("idempotency_key", sa.Text, primary_key=True),
        sa.Column("request_hash", sa.Text, nullable=False),
        sa.Column("response", JSONB, nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()),
    )


def request_hash(request: Any) -> str:
    """A stable fingerprint of a JSON-able request (key order does not matter)."""
    canonical = json.dumps(request, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(canonical.encode()).hexdigest()


async def claim(session: Connection, table: sa.Table, key: str, request: Any) -> dict[str, Any] | None:
    """Claim ``key`` inside the caller's transaction.

    Returns None when this transaction now owns the key: do the effect, then ``record`` the response.
    Returns the stored response when the key was processed before with the same request.
    Raises ``IdempotencyConflict`` when it was processed with a different request.

    A concurrent duplicate blocks on the primary key until the owner commits (then it gets the stored
    response) or rolls back (then it owns the key): the effect happens once.
    """
    if not key:
        raise ValueError("an idempotency key is required")
    fingerprint = request_hash(request)
    claimed = await session.execute(
        insert(table)
        .values(idempotency_key=key, request_hash=fingerprint)
        .on_conflict_do_nothing(index_elements=["idempotency_key"])
        .returning(table.c.idempotency_key)
    )
    if claimed.first() is not None:
        return None
    # READ COMMITTED: this new statement sees the row the other transaction committed.
    row = (
        await session.execute(sa.select(table.c.request_hash, table.c.response).where(table.c.idempotency_key == key))
    ).one()
    if row.request_hash != fingerprint:
        raise IdempotencyConflict(f"idempotency key {key!r} was already used for a different request")
    response: dict[str, Any] = row.response
    return response


async def record(session: Connection, table: sa.Table, key: str, response: dict[str, Any]) -> None:
    """Store the response of a claimed key (same transaction as the claim and the effect)."""
    await session.execute(sa.update(table).where(table.c.idempotency_key == key).values(response=response))


async def once(
    session: Connection,
    table: sa.Table,
    key: str,
    request: Any,
    effect: Callable[[], Awaitable[dict[str, Any]]],
) -> dict[str, Any]:
    """Run ``effect`` at most once per ``key`` and return its response (the stored one on a repeat).

    ``effect`` runs in the caller's transaction and returns a JSON-able dict; commit is the caller's.
    """
    stored = await claim(session, table, key, request)
    if stored is not None:
        return stored
    response = await effect()
    await record(session, table, key, response)
    return response


async def run_once(
    db: Database,
    table: sa.Table,
    request: KeyedRequest,
    effect: Callable[[Connection], Awaitable[dict[str, Any]]],
    result: type[R],
) -> R:
    """A keyed use case in one transaction: ``effect(session)`` runs at most once per
    ``request.idempotency_key``, and its response (stored, on a repeat) comes back as ``result``."""
    async with db.transaction() as session:
        response = await once(session, table, request.idempotency_key, request.model_dump(), lambda: effect(session))
    return result.model_validate(response)
