"""Client CPU of one small transaction (the order-api's status record, an UPDATE that matches no row) through each
way the apps could talk to PostgreSQL, side by side: an ORM session and a Core connection, each with and without
pre-ping, the same Core statement on asyncpg through ``common.fastdb`` (what ``common.db`` gives since issue 18), and
raw asyncpg as the floor. Starts its own embedded PostgreSQL.

    python -m bench.db [--transactions 1000]
"""

from __future__ import annotations

import argparse
import asyncio
import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path

import asyncpg
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker, create_async_engine

from common.db import Database, async_url, ensure_database, libpq_url
from common.embedded_db import start_embedded
from common.migrate import migrate
from devtools.devdb import stop_embedded
from orchestrator import repository
from orchestrator.domain import OrderStatusUpdate

UPDATE = OrderStatusUpdate("no-such-order", "COMPLETED", None, 100, {"status": "COMPLETED"})


async def _cpu_us(one: Callable[[], Awaitable[None]], n: int) -> float:
    for _ in range(50):  # warm the pool and the statement caches
        await one()
    start = time.process_time()
    for _ in range(n):
        await one()
    return (time.process_time() - start) * 1e6 / n


async def _measure(server: str, n: int) -> dict[str, float]:
    await ensure_database(server, "order_api")
    url = async_url(server, "order_api")
    await migrate(url, "orchestrator:migrations")
    out: dict[str, float] = {}
    for ping in (True, False):
        engine = create_async_engine(url, pool_pre_ping=ping)
        sessions = async_sessionmaker(engine, expire_on_commit=False)

        async def in_session(sessions: async_sessionmaker[AsyncSession] = sessions) -> None:
            async with sessions() as session, session.begin():
                await repository.record_status(session, UPDATE)  # type: ignore[arg-type]  # a Session executes Core

        async def on_connection(engine: AsyncEngine = engine) -> None:
            async with engine.begin() as connection:
                await repository.record_status(connection, UPDATE)  # type: ignore[arg-type]  # it executes Core

        out[f"ORM session, pre-ping {'on' if ping else 'off'}"] = await _cpu_us(in_session, n)
        out[f"Core connection, pre-ping {'on' if ping else 'off'}"] = await _cpu_us(on_connection, n)
        await engine.dispose()
    db = Database(url)

    async def on_fastdb() -> None:
        async with db.transaction() as connection:
            await repository.record_status(connection, UPDATE)

    out["Core on asyncpg (common.fastdb)"] = await _cpu_us(on_fastdb, n)
    await db.dispose()
    raw = await asyncpg.connect(libpq_url(server, "order_api"))

    async def plain() -> None:
        async with raw.transaction():
            await raw.execute(
                "UPDATE orders SET status = $1, updated_at = now() WHERE order_id = $2 AND status = ANY($3)",
                "COMPLETED",
                "no-such-order",
                ["PENDING", "RUNNING"],
            )

    out["raw asyncpg (floor)"] = await _cpu_us(plain, n)
    await raw.close()
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.db", description=__doc__.split("\n\n")[0])
    parser.add_argument("--transactions", type=int, default=1000, help="transactions per variant (default 1000)")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="bench-db-") as tmp:
        pgdata = Path(tmp) / "pg"
        server = start_embedded(pgdata)
        try:
            figures = asyncio.run(_measure(server, args.transactions))
        finally:
            stop_embedded(pgdata)
    floor = figures["raw asyncpg (floor)"]
    print(f"{'client CPU per transaction':40} {'µs':>8} {'× floor':>8}")
    for name, us in figures.items():
        print(f"{name:40} {us:8.0f} {us / floor:8.1f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
