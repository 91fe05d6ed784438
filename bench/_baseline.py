"""The engine-free saga ``bench.system`` compares the system with: the same shape without a workflow engine.

Four Litestar services (inventory, payment, shipping, notification) each commit one row per call; an orchestrator
takes ``POST /orders``, commits the order, then calls the four in turn over HTTP keep-alive and commits a saga-log
row after each: nine commits per order, on the same PostgreSQL and the same stack (Litestar, uvicorn, SQLAlchemy
async + asyncpg) as the real services. No retries, no compensation, no durability beyond the rows: the floor.

``python -m bench._baseline service NAME PORT DATABASE_URL`` / ``orchestrator PORT DATABASE_URL URL...``.
"""

from __future__ import annotations

import sys
from typing import Any

import httpx
import sqlalchemy as sa
import uvicorn
from litestar import Litestar, get, post
from sqlalchemy.ext.asyncio import create_async_engine

STEPS = ("inventory", "payment", "shipping", "notification")
metadata = sa.MetaData()
effects = sa.Table(
    "baseline_effects",
    metadata,
    sa.Column("id", sa.BigInteger, sa.Identity(), primary_key=True),
    sa.Column("service", sa.Text, nullable=False),
    sa.Column("order_id", sa.Text, nullable=False),
)
orders = sa.Table(
    "baseline_orders",
    metadata,
    sa.Column("order_id", sa.Text, primary_key=True),
    sa.Column("status", sa.Text, nullable=False),
)
saga_log = sa.Table(
    "baseline_saga_log",
    metadata,
    sa.Column("id", sa.BigInteger, sa.Identity(), primary_key=True),
    sa.Column("order_id", sa.Text, nullable=False),
    sa.Column("step", sa.Text, nullable=False),
)


@get("/healthz")
async def healthz() -> None:
    """What the benchmark waits for before it sends the first order."""


def service(name: str, database_url: str) -> Litestar:
    engine = create_async_engine(database_url, pool_size=20)

    @post("/effect", status_code=200)
    async def effect(data: dict[str, Any]) -> dict[str, Any]:
        async with engine.begin() as conn:
            await conn.execute(sa.insert(effects).values(service=name, order_id=data["order_id"]))
        return {"ok": True}

    return Litestar([effect, healthz], logging_config=None)


def orchestrator(database_url: str, service_urls: list[str]) -> Litestar:
    engine = create_async_engine(database_url, pool_size=20)
    client = httpx.AsyncClient(limits=httpx.Limits(max_keepalive_connections=64), timeout=30)

    @post("/orders", status_code=200)
    async def submit(data: dict[str, Any]) -> dict[str, Any]:
        order_id = data["order_id"]
        async with engine.begin() as conn:
            await conn.execute(sa.insert(orders).values(order_id=order_id, status="RUNNING"))
        for step, url in zip(STEPS, service_urls, strict=True):
            (await client.post(f"{url}/effect", json={"order_id": order_id})).raise_for_status()
            async with engine.begin() as conn:
                await conn.execute(sa.insert(saga_log).values(order_id=order_id, step=step))
        return {"order_id": order_id, "status": "COMPLETED"}

    return Litestar([submit, healthz], logging_config=None)


async def create_tables(database_url: str) -> None:
    """Once, before any process starts (five processes creating them at once would race)."""
    engine = create_async_engine(database_url)
    try:
        async with engine.begin() as conn:
            await conn.run_sync(metadata.create_all)
    finally:
        await engine.dispose()


def main(argv: list[str]) -> int:
    role = argv[0]
    if role == "service":
        name, port, url = argv[1], int(argv[2]), argv[3]
        app = service(name, url)
    elif role == "orchestrator":
        port, url, urls = int(argv[1]), argv[2], argv[3:]
        app = orchestrator(url, urls)
    else:
        raise SystemExit(f"unknown role {role!r}: expected service or orchestrator")
    uvicorn.run(app, host="127.0.0.1", port=port, log_level="warning", access_log=False)
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
