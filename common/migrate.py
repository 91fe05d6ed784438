"""Apply one service's migrations to its database: ``python -m common.migrate <package>``.

What the Kubernetes init containers run before each app (``deploy/``). It reads ``DATABASE_URL`` (the
service's own database, which must exist) and upgrades it to the latest revision. Replicas start at
the same time, so the upgrade holds a PostgreSQL advisory lock: one migrates, the others then find
nothing to do.
"""

from __future__ import annotations

import asyncio
import logging
import os
import sys

import asyncpg

from common.db import libpq_url, migrate

PACKAGES = ("orchestrator", "inventory", "payment", "shipping", "notification")
USAGE = f"usage: python -m common.migrate {{{'|'.join(PACKAGES)}}}  (reads DATABASE_URL)"


async def migrate_locked(url: str, package: str) -> None:
    conn = await asyncpg.connect(libpq_url(url))
    try:
        await conn.execute("SELECT pg_advisory_lock(hashtext('common.migrate'))")
        await migrate(url, f"{package}:migrations")
    finally:
        await conn.close()  # closing the session releases the lock


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
    asyncio.run(migrate_locked(url, argv[0]))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
