"""The local development PostgreSQL: ``python -m common.devdb start|stop|url``.

start: starts the embedded server under ``$DATA_DIR/postgres`` if needed and prints its URL (for POSTGRES_URL);
stop: stops it cleanly (pg_ctl stop); url: prints the URL of the running server (exit 1 if it is not running).
"""

from __future__ import annotations

import logging
import sys

from common.db import embedded_data_dir, embedded_url, start_embedded, stop_embedded

USAGE = "usage: python -m common.devdb start|stop|url"


def main(argv: list[str]) -> int:
    if len(argv) != 1 or argv[0] not in ("start", "stop", "url"):
        print(USAGE, file=sys.stderr)
        return 2
    logging.basicConfig(level=logging.WARNING)
    pgdata = embedded_data_dir()
    command = argv[0]
    if command == "start":
        print(start_embedded(pgdata))
        return 0
    if command == "stop":
        stopped = stop_embedded(pgdata)
        print(f"stopped {pgdata}" if stopped else f"not running: {pgdata}", file=sys.stderr)
        return 0
    url = embedded_url(pgdata)
    if url is None:
        print(f"not running: {pgdata}", file=sys.stderr)
        return 1
    print(url)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
