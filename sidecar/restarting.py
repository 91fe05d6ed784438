"""``python -m sidecar.restarting -- COMMAND...``: run one command and start it again whenever it exits, as a pod's
restart policy does, with the backoff the runners use (0.5 s doubling to 10 s). What ``dapr.yaml``'s apps run
under, because the Dapr CLI (``dapr run -f``) starts each app's command once and never again: without it, an app
that exits (the demo's ``crash_after`` on ``charge`` exits with code 70) stays dead and every later order waits.

Its output is the command's, unprefixed (the CLI prefixes it); a restart is one line on stderr. SIGTERM or SIGINT
stops the command (SIGTERM to its process group, SIGKILL after 10 s) and then this wrapper, exit 0; a second one
kills at once. If the wrapper itself is killed, the command dies with it (PR_SET_PDEATHSIG).

``python -m sidecar run`` and ``python -m realdapr run`` supervise the apps themselves: they run the command inside
(``unwrap``), so that there is one supervisor, one log line per restart and one process per app to signal.
"""

from __future__ import annotations

import asyncio
import logging
import os
import sys
from collections.abc import Sequence
from pathlib import Path

from .supervisor import Launch, Supervisor, on_stop_signals

MODULE = "sidecar.restarting"
USAGE = f"usage: python -m {MODULE} -- COMMAND [ARG...]"

log = logging.getLogger(MODULE)


def unwrap(command: Sequence[str]) -> tuple[str, ...]:
    """The command this wrapper would run, when ``command`` is ``PYTHON -m sidecar.restarting -- COMMAND...``;
    else ``command`` as it is."""
    if len(command) >= 4 and list(command[1:3]) == ["-m", MODULE] and command[3] == "--":
        return tuple(command[4:])
    return tuple(command)


def main(argv: Sequence[str]) -> int:
    if len(argv) < 2 or argv[0] != "--":
        print(USAGE, file=sys.stderr)
        return 2
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter(f"[{MODULE}] %(asctime)s %(levelname)s %(message)s", "%H:%M:%S"))
    logging.basicConfig(level=logging.INFO, handlers=[handler], force=True)
    name = os.environ.get("APP_ID") or Path(argv[1]).name
    return asyncio.run(_run(Launch(name, argv[1:], Path.cwd(), dict(os.environ))))


async def _run(launch: Launch) -> int:
    stop = asyncio.Event()
    forced: list[int] = []
    supervisor = Supervisor([launch], prefix=False)

    def kill_now(signum: int) -> None:
        forced.append(signum)
        supervisor.kill_now()

    on_stop_signals(stop.set, kill_now, log)
    await supervisor.run(stop)
    return 128 + forced[0] if forced else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
