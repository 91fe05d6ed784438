"""The trust root of a run with mTLS: sentry's issuer credentials (``ca.crt``, ``issuer.crt``, ``issuer.key``) in a
folder of the run's data (``.data/dapr/sentry/`` for ``make run-dapr``; never committed), made by sentry itself the
first time and reused afterwards, so that certificates and signed workflow histories stay valid across runs.

Sentry creates a missing root itself, but its file watcher then sees the files it wrote and reloads its CA three
times in the next seconds, its port down each time. So the first start is a start of its own: sentry runs until the
files are there, and stops; the run's sentry then finds them ("Root and issuer certs found") and never reloads.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Sequence
from pathlib import Path

from . import RunError
from .failures import fatal_lines

log = logging.getLogger("realdapr")

CREDENTIALS = ("ca.crt", "issuer.crt", "issuer.key")
_PERSISTED = b"persisted successfully"


def has_trust_root(folder: Path) -> bool:
    return all((folder / name).is_file() for name in CREDENTIALS)


async def ensure_trust_root(sentry_command: Sequence[str], folder: Path, cwd: Path, timeout: float = 60.0) -> Path:
    """``folder/ca.crt``, after making the trust root with ``sentry_command`` (sentry, pointed at ``folder``, logging
    at info level: its "persisted successfully" line says the files are whole) if the folder does not hold one yet.
    RunError, with sentry's own reason, when it cannot be made."""
    if has_trust_root(folder):
        return folder / "ca.crt"
    _prepare(folder)
    log.info("making the trust root of mTLS in %s (sentry, first start)", folder)
    proc = await asyncio.create_subprocess_exec(
        *sentry_command,
        cwd=cwd,
        stdin=asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )
    output = bytearray()

    async def read() -> None:
        assert proc.stdout is not None
        while line := await proc.stdout.readline():
            output.extend(line)

    reader = asyncio.create_task(read())
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    try:
        while not (has_trust_root(folder) and _PERSISTED in output):
            if proc.returncode is not None or loop.time() > deadline:
                break
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(asyncio.shield(proc.wait()), 0.1)
    finally:
        if proc.returncode is None:
            proc.terminate()
            try:
                await asyncio.wait_for(proc.wait(), 10)
            except TimeoutError:
                proc.kill()
                await proc.wait()
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(reader, 2)
    if not has_trust_root(folder):
        text = output.decode(errors="replace")
        reason = "; ".join(fatal_lines(text.splitlines())) or (text.strip().splitlines() or ["no output"])[-1]
        raise RunError(f"sentry could not make the trust root in {folder}: {reason}")
    log.info("trust root made: %s", folder / "ca.crt")
    return folder / "ca.crt"


def _prepare(folder: Path) -> None:
    """An empty folder for sentry to fill, readable by this user only (it will hold the issuer's key)."""
    partial = [name for name in CREDENTIALS if (folder / name).exists()]
    if partial:
        # Sentry would generate the missing ones against a key it did not make: refuse, and say what to do.
        raise RunError(
            f"{folder} holds {', '.join(partial)} but not all of {', '.join(CREDENTIALS)}: remove the folder to "
            "make a new trust root (stored signed workflow histories then no longer verify)"
        )
    folder.mkdir(parents=True, exist_ok=True)
    folder.chmod(0o700)
