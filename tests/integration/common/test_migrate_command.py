"""`python -m common.migrate <package>`, the command the Kubernetes init containers run."""

from __future__ import annotations

import asyncio
import os
import sys
import uuid

import asyncpg

from common.db import drop_database, ensure_database, libpq_url


async def run(*args: str, env: dict[str, str]) -> tuple[int, str]:
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "common.migrate",
        *args,
        env=env,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )
    out, _ = await proc.communicate()
    return proc.returncode, out.decode()


async def test_two_replicas_migrating_at_once_both_succeed_and_the_schema_is_there(pg_server_url):
    name = f"test_migrate_{uuid.uuid4().hex[:8]}"
    await ensure_database(pg_server_url, name)
    try:
        env = {**os.environ, "DATABASE_URL": libpq_url(pg_server_url, name)}
        results = await asyncio.gather(run("payment", env=env), run("payment", env=env))
        assert [code for code, _ in results] == [0, 0], results
        conn = await asyncpg.connect(libpq_url(pg_server_url, name))
        try:
            tables = {
                r["tablename"] for r in await conn.fetch("SELECT tablename FROM pg_tables WHERE schemaname='public'")
            }
            version = await conn.fetchval("SELECT version_num FROM alembic_version")
        finally:
            await conn.close()
        assert {"payments", "ledger", "processed_requests", "faults", "risk_reviews"} <= tables, tables
        assert version == "0002"  # payment's head revision
    finally:
        await drop_database(pg_server_url, name)


async def test_an_unknown_package_or_a_missing_database_url_is_a_usage_error():
    env = {k: v for k, v in os.environ.items() if k != "DATABASE_URL"}
    code, out = await run("billing", env={**env, "DATABASE_URL": "postgresql://x@/y"})
    assert code == 2 and "usage: python -m common.migrate" in out
    code, out = await run("payment", env=env)
    assert code == 2 and "DATABASE_URL is not set" in out
